package clientapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/mxerr"
)

// wsMaxResponseBytes bounds one response carried over the transport:
// responses are buffered whole, and media belongs on HTTP anyway.
const wsMaxResponseBytes = 8 << 20

// wsResponse is a "response" frame.
type wsResponse struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
	// A body that is not JSON (a media download) comes base64-encoded,
	// with its content type.
	BodyBase64  []byte `json:"body_base64,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// handleRequest runs a "request" frame in a goroutine of its own, so that
// requests of one connection run concurrently and answer in any order; a
// request beyond maxInFlight is answered 429 at once. It returns false
// when the frame ended the connection.
func (c *wsConn) handleRequest(f wsInFrame) bool {
	if f.ID == "" {
		c.closeWith(wsCloseBadFrame, "M_BAD_JSON: a request frame needs an id")
		return false
	}
	select {
	case c.inFlight <- struct{}{}:
	default:
		m := mxerr.LimitExceeded.Msgf("more than %d requests in flight on this connection", c.limits.maxInFlight).
			With("retry_after_ms", 100)
		c.send(c.ctx, wsOutFrame{data: mustMarshal(wsResponse{
			Type: "response", ID: f.ID, Status: m.Status, Body: mustMarshal(m.Body()),
		})})
		return true
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		// The slot is freed once the response is written, not queued:
		// the slots bound the responses held in memory too.
		defer func() { <-c.inFlight }()
		written := make(chan struct{})
		if c.send(c.ctx, wsOutFrame{data: c.roundTrip(f), written: written}) {
			select {
			case <-written:
			case <-c.ctx.Done():
			}
		}
	}()
	return true
}

// roundTrip runs the request through the API's own router, as the
// connection's user and device, and encodes the answer: errors, UIA 401
// bodies and rate limits are exactly those of HTTP.
func (c *wsConn) roundTrip(f wsInFrame) []byte {
	rec := &wsRecorder{header: http.Header{}}
	if req, err := c.buildRequest(f); err != nil {
		writeMatrixError(rec, err)
	} else {
		c.api.ServeHTTP(rec, req)
	}
	out := wsResponse{Type: "response", ID: f.ID, Status: rec.status}
	if out.Status == 0 {
		out.Status = http.StatusOK
	}
	body := rec.body.Bytes()
	switch {
	case rec.overflow:
		m := mxerr.TooLarge.WithStatus(http.StatusBadGateway).
			Msgf("the response is larger than %d bytes; use HTTP for this request", wsMaxResponseBytes)
		out.Status, out.Body = m.Status, mustMarshal(m.Body())
	case len(body) == 0:
	case strings.HasPrefix(rec.header.Get("Content-Type"), "application/json") && json.Valid(body):
		out.Body = body
	default:
		out.BodyBase64 = body
		out.ContentType = rec.header.Get("Content-Type")
	}
	return mustMarshal(out)
}

// buildRequest makes the in-process HTTP request of a "request" frame.
func (c *wsConn) buildRequest(f wsInFrame) (*http.Request, *mxerr.Error) {
	if f.Method == "" || f.Path == "" {
		return nil, mxerr.BadJSON.Msg("a request needs a method and a path")
	}
	u, err := url.ParseRequestURI(f.Path)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, mxerr.InvalidParam.Msg("path must be an absolute path such as /_matrix/client/v3/sync")
	}
	if u.Path == wsPath {
		return nil, mxerr.Unrecognized.WithStatus(http.StatusBadRequest).Msg("the WebSocket endpoint cannot be requested over a WebSocket")
	}
	var body io.Reader
	if len(f.Body) > 0 && !bytes.Equal(f.Body, []byte("null")) {
		body = bytes.NewReader(f.Body)
	}
	req, err := http.NewRequestWithContext(c.ctx, strings.ToUpper(f.Method), f.Path, body)
	if err != nil {
		return nil, mxerr.InvalidParam.Msg("method is not a valid HTTP method")
	}
	req.RequestURI = f.Path
	req.Host = c.upgrade.Host
	req.RemoteAddr = c.upgrade.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ua := c.upgrade.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// wsRecorder is the http.ResponseWriter of an in-process request.
type wsRecorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

var errWSResponseTooLarge = errors.New("response too large for the WebSocket transport")

func (r *wsRecorder) Header() http.Header { return r.header }

func (r *wsRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *wsRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.body.Len()+len(p) > wsMaxResponseBytes {
		r.overflow = true
		return 0, errWSResponseTooLarge
	}
	return r.body.Write(p)
}
