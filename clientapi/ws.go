package clientapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/users"
)

// The WebSocket transport (docs/websocket.md) is Parley's own: one
// connection carries the /sync stream and request/response for every
// Client-Server endpoint. It adds no behaviour of its own: requests run
// through the same router and handlers as HTTP, and the stream is the same
// sync engine, so whatever the HTTP API learns the transport carries.

// wsPath is the endpoint; "unstable" and the reverse-DNS prefix follow the
// spec's rules for custom endpoints (client-server-api "Extensions").
const wsPath = "/_matrix/client/unstable/im.parley.ws/v1/connect"

// Close codes beyond the standard ones (RFC 6455 section 7.4.2 leaves
// 4000-4999 to applications). docs/websocket.md lists them all.
const (
	// wsCloseBadFrame: a frame that is not a JSON object, of an unknown
	// type, or missing a field the type requires.
	wsCloseBadFrame websocket.StatusCode = 4400
	// wsCloseAuth: no, a malformed or an unknown access token, or a token
	// that stopped working (logout, expiry, deactivation).
	wsCloseAuth websocket.StatusCode = 4401
)

// Tunables of a connection; tests of the package may shorten them.
var wsDefaults = wsLimits{
	authTimeout:  10 * time.Second,
	pingInterval: 30 * time.Second,
	pingTimeout:  20 * time.Second,
	writeTimeout: 2 * time.Minute,
	maxInFlight:  32,
	queueLen:     64,
	syncTimeout:  5 * time.Minute,
}

type wsLimits struct {
	// authTimeout bounds the wait for the auth frame.
	authTimeout time.Duration
	// pingInterval and pingTimeout: keep-alive; a peer that does not
	// answer a ping in time is gone.
	pingInterval, pingTimeout time.Duration
	// writeTimeout bounds one frame's write: a client that reads nothing
	// for this long is disconnected rather than held forever.
	writeTimeout time.Duration
	// maxInFlight caps the requests of one connection running at once.
	maxInFlight int
	// queueLen bounds the outbound frames of one connection. Every
	// producer holds at most one frame in it (a request's response, the
	// sync stream's current batch), so with maxInFlight < queueLen a
	// producer never waits for room.
	queueLen int
	// syncTimeout is the long-poll of each Sync call of the stream; the
	// sync engine caps it at its own maximum.
	syncTimeout time.Duration
}

// wsHub tracks the open connections so that shutdown can close them:
// http.Server.Shutdown does not see hijacked connections.
type wsHub struct {
	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	ended   int
	closing bool
	wg      sync.WaitGroup
	limits  wsLimits
	// onActivity is presence's heartbeat hook (OnWebSocketActivity).
	onActivity atomic.Pointer[func(ctx context.Context, user id.UserID, device id.DeviceID)]
}

// WebSocketStats is a snapshot of the transport for metrics and tests.
type WebSocketStats struct {
	// Connections is the number of open connections.
	Connections int
	// Ended counts the connections that have ended since the server
	// started (a connection is counted open from just after its upgrade
	// is answered, so a client may see its connection before it is in
	// Connections; once in Ended, it was counted there).
	Ended int
	// MaxQueuedSyncBatches is the most sync batches any connection has
	// held, built but not yet written to its socket, at one time.
	MaxQueuedSyncBatches int
	// SyncBatches counts the sync batches built on every connection.
	SyncBatches int
	// Writers counts the connections whose writer goroutine runs now:
	// one runs only while frames are queued.
	Writers int
}

// WebSocketStats reports on the open WebSocket connections.
func (a *API) WebSocketStats() WebSocketStats {
	var st WebSocketStats
	if a.ws == nil {
		return st
	}
	a.ws.mu.Lock()
	defer a.ws.mu.Unlock()
	st.Connections, st.Ended = len(a.ws.conns), a.ws.ended
	for c := range a.ws.conns {
		st.MaxQueuedSyncBatches = max(st.MaxQueuedSyncBatches, int(c.maxQueuedSync.Load()))
		st.SyncBatches += int(c.syncBatches.Load())
		if c.writing.Load() {
			st.Writers++
		}
	}
	return st
}

// CloseWebSockets closes every WebSocket connection with 1001 "going
// away" and refuses new ones, then waits until their handlers returned or
// ctx ends. app calls it when the server shuts down.
func (a *API) CloseWebSockets(ctx context.Context) {
	if a.ws == nil {
		return
	}
	a.ws.mu.Lock()
	a.ws.closing = true
	conns := make([]*wsConn, 0, len(a.ws.conns))
	for c := range a.ws.conns {
		conns = append(conns, c)
	}
	a.ws.mu.Unlock()
	for _, c := range conns {
		go c.closeWith(websocket.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { a.ws.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// mountWebSocket mounts the WebSocket endpoint (it needs the sync engine
// for its stream).
func (a *API) mountWebSocket(r chi.Router) {
	if a.Sync == nil {
		return
	}
	a.ws = &wsHub{conns: map[*wsConn]struct{}{}, limits: wsDefaults}
	r.Get(wsPath, a.connectWebSocket)
}

// register adds c unless the server is shutting down.
func (h *wsHub) register(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	return true
}

func (h *wsHub) unregister(c *wsConn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.ended++
	h.mu.Unlock()
	h.wg.Done()
}

// connectWebSocket handles GET /_matrix/client/unstable/im.parley.ws/v1/connect.
// It upgrades first and authenticates after, so that every failure reaches
// the client the same way, as a close code and reason, which is all a
// browser's WebSocket API shows.
func (a *API) connectWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
		// Access tokens, not cookies, authenticate: a page on another
		// origin gains nothing it could not do with HTTP, which the CORS
		// headers already open to every origin.
		InsecureSkipVerify: true,
		// permessage-deflate when the client offers it. No context
		// takeover: no per-connection compression window, which matters
		// with many idle connections.
		CompressionMode: websocket.CompressionNoContextTakeover,
	})
	if err != nil {
		// Accept answered the request itself (not an upgrade, bad origin).
		return
	}
	limits := a.ws.limits
	ws.SetReadLimit(a.Config.Client.MaxBodyBytes + 64<<10)
	// Not derived from r's context: that one carries the router's state
	// for this very request, which the in-process requests must not
	// inherit, and it ends with the handler anyway.
	ctx, cancel := context.WithCancel(context.Background())
	c := &wsConn{
		api:      a,
		ws:       ws,
		limits:   limits,
		ctx:      ctx,
		cancel:   cancel,
		upgrade:  upgradeRequest(r),
		out:      make(chan wsOutFrame, limits.queueLen),
		inFlight: make(chan struct{}, limits.maxInFlight),
	}
	if !a.ws.register(c) {
		cancel()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	// The connection runs on a goroutine of its own and the handler
	// returns: net/http's goroutine, its connection state and buffers,
	// the request and the middleware's contexts are not held for the
	// connection's lifetime (issue #9: tens of thousands of idle
	// connections). The access log therefore records the upgrade, not
	// the connection's length.
	go func() {
		defer a.ws.unregister(c)
		defer func() {
			if p := recover(); p != nil {
				a.Logger.ErrorContext(ctx, "websocket connection panicked",
					slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				c.closeWith(websocket.StatusInternalError, "M_UNKNOWN: internal error")
			}
		}()
		c.serve()
	}()
}

// upgradeRequest keeps of the upgrade request what the connection reads
// later (the token, the client's address, the host and user agent its
// in-process requests carry), without the context and, through it, the
// handler's response writer and router state.
func upgradeRequest(r *http.Request) *http.Request {
	return &http.Request{Method: r.Method, URL: r.URL, Header: r.Header, Host: r.Host,
		RemoteAddr: r.RemoteAddr, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor}
}

// WebSocket buffer sizes: net/http's are 4 KiB each way, held for a
// connection's lifetime. Frames of an idle connection are small, and
// larger ones pass through (bufio writes and reads past a buffer it
// cannot fill), so 512 bytes each costs only more reads and writes for
// large frames.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 512
)

// smallBuffers hands the WebSocket library buffers of wsReadBuffer and
// wsWriteBuffer bytes instead of net/http's, when it hijacks the
// connection.
type smallBuffers struct{ http.ResponseWriter }

// Hijack implements http.Hijacker.
func (s smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The client's first frames, sent before it read the 101, may be in
	// net/http's buffer already. They must be in the new reader's buffer,
	// not only ahead of conn in its source: the WebSocket library keeps
	// what is buffered and then resets the reader's source to conn.
	early, _ := brw.Reader.Peek(brw.Reader.Buffered())
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(wsReadBuffer, len(early)))
	if _, err := br.Peek(len(early)); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("websocket: buffering the client's first frames: %w", err)
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s smallBuffers) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// authenticate finds the requester: from the upgrade request's
// Authorization header (or access_token parameter) when it has one, else
// from the first frame, which must be {"type":"auth","access_token":…}.
func (c *wsConn) authenticate() (users.Requester, string, bool) {
	token, err := accessToken(c.upgrade)
	// Only a request with no token at all may authenticate by frame; a
	// malformed header is an error, as over HTTP.
	noToken := errors.Is(err, mxerr.MissingToken) && c.upgrade.Header.Get("Authorization") == ""
	if err != nil && !noToken {
		c.closeWith(wsCloseAuth, closeReason(err))
		return users.Requester{}, "", false
	}
	if token == "" {
		// A timer, not a deadline on Read: an expired read context makes
		// the library drop the connection without a close frame.
		timer := time.AfterFunc(c.limits.authTimeout, func() {
			c.closeWith(wsCloseAuth, "M_MISSING_TOKEN: no auth frame in time")
		})
		typ, data, err := c.ws.Read(context.Background())
		timer.Stop()
		if err != nil {
			return users.Requester{}, "", false
		}
		var f struct {
			Type        string `json:"type"`
			AccessToken string `json:"access_token"`
		}
		if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil || f.Type != "auth" {
			c.closeWith(wsCloseAuth, "M_MISSING_TOKEN: the first frame must be an auth frame")
			return users.Requester{}, "", false
		}
		if f.AccessToken == "" {
			c.closeWith(wsCloseAuth, "M_MISSING_TOKEN: the auth frame has no access_token")
			return users.Requester{}, "", false
		}
		token = f.AccessToken
	}
	req, err := c.api.Users.Authenticate(c.ctx, token, clientIP(c.upgrade))
	if err != nil {
		c.closeForAuthError(err)
		return users.Requester{}, "", false
	}
	setRequestUser(c.upgrade.Context(), req.UserID)
	return req, token, true
}

// closeForAuthError closes after a failed token check: 4401 when the token
// is missing, unknown or expired; 1011 when the check itself failed (the
// database), which a client answers by reconnecting, not by logging in.
func (c *wsConn) closeForAuthError(err error) {
	if _, known := toMatrixError(err); !known {
		c.api.Logger.ErrorContext(c.ctx, "websocket token check failed",
			slog.String("user_id", string(c.requester.UserID)), slog.String("error", err.Error()))
		c.closeWith(websocket.StatusInternalError, "M_UNKNOWN: the access token could not be checked; reconnect")
		return
	}
	c.closeWith(wsCloseAuth, closeReason(err))
}

// closeReason renders a Matrix error as "ERRCODE: message", cut to the
// 123 bytes a close frame's reason may hold (RFC 6455 section 5.5).
func closeReason(err error) string {
	m, _ := toMatrixError(err)
	reason := m.Error()
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return reason
}

// Frame errors, reported in the close reason.
var errNotJSONFrame = mxerr.NotJSON.Msg("a frame must be a JSON object")

var errBadFrame = mxerr.BadJSON.Msg("a frame field has the wrong type")

func errUnknownFrame(typ string) error {
	if len(typ) > 40 {
		typ = typ[:40]
	}
	return mxerr.Unrecognized.Msgf("unknown frame type %q", typ)
}
