// Package fedclient is the outbound side of federation: server discovery
// (resolve.go), TLS to the right name with the system's roots plus
// federation.ca_file, refusal of non-public addresses at dial time, and
// requests signed with the X-Matrix scheme as this server. Typed calls per
// endpoint group live in their own files, as methods on *Client.
package fedclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/netguard"
	"github.com/parleyhq/parley/rooms/signing"
)

// UserAgent identifies Parley to the servers it calls.
const UserAgent = "Parley (federation)"

// MaxResponseBytes bounds a decoded response body: a send_join of a very
// large room is the biggest answer the API has.
const MaxResponseBytes = 512 << 20

// Config configures a Client.
type Config struct {
	ServerName id.ServerName
	Key        signing.Key
	Federation config.Federation
	// Registry receives the outbound request metrics; nil: none.
	Registry prometheus.Registerer
}

// Client sends requests to other servers as ServerName.
type Client struct {
	cfg      Config
	logger   *slog.Logger
	resolver *resolver
	tlsBase  *tls.Config
	dialer   *net.Dialer
	// dialAddr replaces the dialled address (tests of discovery).
	dialAddr func(addr string) string
	metrics  *metrics

	mu         sync.Mutex
	transports map[id.ServerName]*http.Transport
}

// New builds a client; it reads federation.ca_file.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.Federation.CAFile != "" {
		pem, err := os.ReadFile(cfg.Federation.CAFile)
		if err != nil {
			return nil, fmt.Errorf("federation.ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("federation.ca_file: no PEM certificate in %s", cfg.Federation.CAFile)
		}
	}
	c := &Client{
		cfg:        cfg,
		logger:     logger,
		tlsBase:    &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		transports: map[id.ServerName]*http.Transport{},
		metrics:    newMetrics(cfg.Registry),
	}
	c.dialer = &net.Dialer{Timeout: cfg.Federation.ConnectTimeout, KeepAlive: 30 * time.Second,
		Control: addressGuard(cfg.Federation.AllowPrivateAddresses)}
	static := make(map[id.ServerName]string, len(cfg.Federation.Resolve))
	for name, addr := range cfg.Federation.Resolve {
		static[id.ServerName(name)] = addr
	}
	wkTransport := &http.Transport{
		DialContext:         c.dial,
		TLSClientConfig:     c.tlsBase.Clone(),
		TLSHandshakeTimeout: cfg.Federation.ConnectTimeout,
		MaxIdleConns:        16,
		IdleConnTimeout:     30 * time.Second,
	}
	c.resolver = &resolver{
		static:    static,
		lookupSRV: net.DefaultResolver.LookupSRV,
		wellKnown: &http.Client{Transport: wkTransport, Timeout: 30 * time.Second},
		now:       time.Now,
		wk:        map[string]wellKnownEntry{},
		targets:   map[id.ServerName]targetEntry{},
	}
	return c, nil
}

// Close drops the idle connections to every server.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.transports {
		t.CloseIdleConnections()
	}
	c.resolver.wellKnown.CloseIdleConnections()
}

// ServerName is the server the client signs as.
func (c *Client) ServerName() id.ServerName { return c.cfg.ServerName }

// Resolve runs discovery for server (the federation.resolve map first).
func (c *Client) Resolve(ctx context.Context, server id.ServerName) (Target, error) {
	return c.resolver.resolve(ctx, server)
}

// addressGuard refuses, at connect time and so after DNS, every address
// that is not a public unicast address, unless allowed: a remote server
// name must not make us reach into our own network (SSRF).
func addressGuard(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, errPrivateAddress)
		}
		if !netguard.Public(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", address, errPrivateAddress)
		}
		return nil
	}
}

// dial connects through the guarded dialer.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.dialAddr != nil {
		addr = c.dialAddr(addr)
	}
	return c.dialer.DialContext(ctx, network, addr)
}

// transport returns the connection pool of one destination: its dial
// function knows the destination, so discovery and the TLS name follow it.
func (c *Client) transport(server id.ServerName) *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports[server]; ok {
		return t
	}
	t := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return c.dialTLS(ctx, network, server)
		},
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: c.cfg.Federation.RequestTimeout,
	}
	c.transports[server] = t
	return t
}

// dialTLS resolves server, connects and shakes hands with the certificate
// name discovery chose (no SNI for an IP literal, as the spec says). When
// discovery found several SRV targets, each is tried in turn until one
// connects and completes the handshake.
func (c *Client) dialTLS(ctx context.Context, network string, server id.ServerName) (net.Conn, error) {
	target, err := c.resolver.resolve(ctx, server)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, addr := range target.Addrs() {
		conn, err := c.dialOne(ctx, network, server, addr, target.TLSName)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	// Discover again next time (SRV answers may have changed); the
	// well-known document keeps its own cache.
	c.resolver.forget(server)
	return nil, errors.Join(errs...)
}

// dialOne connects to one address of server and shakes hands, within the
// connect timeout.
func (c *Client) dialOne(ctx context.Context, network string, server id.ServerName, addr, tlsName string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Federation.ConnectTimeout)
	defer cancel()
	raw, err := c.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := c.tlsBase.Clone()
	cfg.ServerName = tlsName
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS with %s (%s as %s): %w", server, addr, tlsName, err)
	}
	return conn, nil
}

// Error is a non-2xx answer of another server.
type Error struct {
	Status  int
	Errcode string // "" when the body is not a Matrix error
	Message string
	Body    []byte
	// RetryAfter is retry_after_ms or the Retry-After header, 0 if none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Errcode != "" {
		return fmt.Sprintf("remote answered %d %s: %s", e.Status, e.Errcode, e.Message)
	}
	return fmt.Sprintf("remote answered %d", e.Status)
}

// IsErrcode says whether err is a remote Matrix error with errcode.
func IsErrcode(err error, errcode string) bool {
	var e *Error
	return errors.As(err, &e) && e.Errcode == errcode
}

// StatusOf is the remote HTTP status of err, 0 when the request got no
// answer (network, TLS, timeout).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func decodeError(res *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &Error{Status: res.StatusCode, Body: body}
	var m struct {
		Errcode      string `json:"errcode"`
		Error        string `json:"error"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	if json.Unmarshal(body, &m) == nil {
		e.Errcode, e.Message = m.Errcode, m.Error
		e.RetryAfter = time.Duration(m.RetryAfterMS) * time.Millisecond
	}
	if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 && e.RetryAfter == 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

// Do sends a request signed as our server to destination and decodes the
// answer. path is the request target with its query string, its segments
// already escaped. reqBody is nil (no body), []byte or json.RawMessage
// (sent as is) or a value to encode as JSON; respBody is nil (discarded),
// *[]byte or *json.RawMessage (raw bytes) or a pointer to decode into. A
// non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, destination id.ServerName, method, path string, reqBody, respBody any) error {
	return c.do(ctx, destination, method, path, reqBody, respBody, true)
}

// DoUnsigned is Do without the Authorization header, for the key
// endpoints, which need none.
func (c *Client) DoUnsigned(ctx context.Context, destination id.ServerName, method, path string, reqBody, respBody any) error {
	return c.do(ctx, destination, method, path, reqBody, respBody, false)
}

func (c *Client) do(ctx context.Context, destination id.ServerName, method, path string, reqBody, respBody any, signed bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Federation.RequestTimeout)
	defer cancel()
	res, err := c.send(ctx, destination, method, path, reqBody, nil, signed)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s%s: read response: %w", method, destination, path, err)
	}
	if len(body) > MaxResponseBytes {
		return fmt.Errorf("%s %s%s: response larger than %d bytes", method, destination, path, MaxResponseBytes)
	}
	switch out := respBody.(type) {
	case nil:
		return nil
	case *[]byte:
		*out = body
		return nil
	case *json.RawMessage:
		*out = body
		return nil
	default:
		if len(bytes.TrimSpace(body)) == 0 {
			return nil // an empty 2xx body leaves respBody as it is
		}
		if err := json.Unmarshal(body, respBody); err != nil {
			return fmt.Errorf("%s %s%s: decode response: %w", method, destination, path, err)
		}
		return nil
	}
}

// DoRaw is Do returning the response itself, for bodies to stream
// (multipart media). The caller closes its Body. header adds request
// headers. The request timeout covers the headers only; ctx bounds the
// rest.
func (c *Client) DoRaw(ctx context.Context, destination id.ServerName, method, path string, reqBody any, header http.Header) (*http.Response, error) {
	return c.send(ctx, destination, method, path, reqBody, header, true)
}

// send builds, signs and sends a request; a non-2xx answer is consumed and
// returned as an *Error.
func (c *Client) send(ctx context.Context, destination id.ServerName, method, path string, reqBody any, header http.Header, signed bool) (*http.Response, error) {
	var content []byte
	switch b := reqBody.(type) {
	case nil:
	case []byte:
		content = b
	case json.RawMessage:
		content = b
	default:
		var err error
		if content, err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("encode request to %s: %w", destination, err)
		}
	}
	target, err := c.resolver.resolve(ctx, destination)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if content != nil {
		body = bytes.NewReader(content)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+string(destination)+path, body)
	if err != nil {
		return nil, fmt.Errorf("request to %s: %w", destination, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Host = target.Host
	req.Header.Set("User-Agent", UserAgent)
	if method == http.MethodPut {
		// Every federation PUT is idempotent (transactions by id, joins,
		// leaves, invites by event): let the transport resend one whose
		// pooled connection the remote closed (a restart) instead of
		// failing it. The empty header is not sent.
		req.Header["X-Idempotency-Key"] = nil
	}
	if content != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if signed {
		auth, err := xmatrix.Sign(c.cfg.Key, c.cfg.ServerName, destination, method, req.URL.RequestURI(), content)
		if err != nil {
			return nil, fmt.Errorf("sign request to %s: %w", destination, err)
		}
		req.Header.Set("Authorization", auth)
	}
	start := time.Now()
	res, err := c.transport(destination).RoundTrip(req)
	if err != nil {
		c.metrics.observe(method, 0, time.Since(start))
		return nil, fmt.Errorf("%s %s%s: %w", method, destination, path, err)
	}
	c.metrics.observe(method, res.StatusCode, time.Since(start))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		defer res.Body.Close()
		return nil, decodeError(res)
	}
	return res, nil
}

// metrics count outbound requests by method and status class; the
// destination is left out: the set of remote servers is unbounded.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_federation_outbound_requests_total",
			Help: "Outbound federation requests by method and status (0: no answer).",
		}, []string{"method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_federation_outbound_request_seconds",
			Help:    "Time to the response headers of outbound federation requests.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *metrics) observe(method string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}
