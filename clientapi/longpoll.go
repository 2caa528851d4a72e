package clientapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/syncer"
)

// A long-poll /sync that has to wait is parked: the handler takes its
// HTTP/1.1 connection over and returns, the wait is a callback and a timer
// in the notifier (syncer.Parked), and when it ends a worker of a bounded
// pool (longpoll_queue.go) builds the answer, writes the HTTP response
// itself and gives the connection back to the http.Server for the
// client's next request. A waiting long-poll then
// holds its socket and a few hundred bytes, not net/http's connection
// state, 4 KiB buffers each way, the request with its contexts and chi's
// route context, and two goroutines (issue #9: 20,000 idle clients in
// 1 GiB). HTTP/2, TLS, a request with a body and anything not hijackable
// wait as before, on the handler's goroutine.
//
// A client that goes away while parked is noticed at the answer: the
// write fails, or the server reads the end of the connection after it
// has it back; the deadline bounds the registration either way.

// longPollWriteTimeout bounds the write of a parked long-poll's answer: a
// client that reads nothing for this long is disconnected.
const longPollWriteTimeout = time.Minute

// longPollHub holds the parked long-polls of an API.
type longPollHub struct {
	mu sync.Mutex
	// handBack gives a connection back to the http.Server that accepted
	// it (app's listener); nil: no long-poll is parked.
	handBack func(net.Conn)
	// closing: the server shuts down; nothing more is parked and answered
	// connections are closed, not handed back.
	closing bool
	wg      sync.WaitGroup

	parked, answered, handedBack, closed, writeFailed atomic.Int64
	// answers runs the answers of the waits that ended.
	answers answerQueue
}

// LongPollStats is a snapshot of the parked long-polls for metrics and
// tests.
type LongPollStats struct {
	// Parked is the number of long-polls parked now.
	Parked int
	// Answered counts the parked long-polls answered; HandedBack those
	// whose connection went back to the server for the next request,
	// Closed those whose connection was closed after the answer (the
	// client asked, its write failed, or the server shuts down).
	Answered, HandedBack, Closed int
	// WriteFailed counts answers that could not be written (the client
	// was gone).
	WriteFailed int
}

// LongPollStats reports on the parked long-polls.
func (a *API) LongPollStats() LongPollStats {
	h := &a.longPolls
	return LongPollStats{Parked: int(h.parked.Load()), Answered: int(h.answered.Load()),
		HandedBack: int(h.handedBack.Load()), Closed: int(h.closed.Load()), WriteFailed: int(h.writeFailed.Load())}
}

// ReturnConnectionsTo enables parking: handBack must give a connection
// back to the http.Server serving this API, which then reads its next
// request (app's listener re-accepts it). Call it before serving.
func (a *API) ReturnConnectionsTo(handBack func(net.Conn)) {
	a.longPolls.mu.Lock()
	defer a.longPolls.mu.Unlock()
	a.longPolls.handBack = handBack
}

// StopParking is the start of a shutdown: no long-poll is parked from
// now on, and a parked one's connection closes after its answer (the
// answer says so) instead of going back to a server that stops.
func (a *API) StopParking() {
	h := &a.longPolls
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
}

// WaitParked waits, until ctx ends, for the parked long-polls to answer.
// app calls it when the server shuts down, after StopParking and closing
// the notifier, which ends every wait: http.Server.Shutdown does not see
// hijacked connections.
func (a *API) WaitParked(ctx context.Context) {
	h := &a.longPolls
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// canPark tells whether the long-poll of r may be parked: a plain
// HTTP/1.x request without a body (its next request follows at once on
// the connection), on a hijackable connection of a server that takes
// connections back.
func (h *longPollHub) canPark(w http.ResponseWriter, r *http.Request) bool {
	if r.ProtoMajor != 1 || r.TLS != nil || r.ContentLength != 0 || !hijackable(w) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handBack != nil && !h.closing
}

// enter counts a long-poll about to be parked; false once closing.
func (h *longPollHub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.wg.Add(1)
	return true
}

// hijackable tells whether w, or a writer it wraps, can be hijacked.
func hijackable(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// parkedPoll is one parked long-poll: what its answer needs once the
// request has returned.
type parkedPoll struct {
	api    *API
	conn   net.Conn
	parked *syncer.Parked
	// early is what net/http had read past the request (a pipelined
	// next request); it goes back with the connection.
	early []byte
	// header is what the middlewares set (CORS, X-Request-Id).
	header http.Header
	// closeAfter: the client asked to close after the answer
	// (Connection: close, HTTP/1.0 without keep-alive).
	closeAfter bool
	// The access log's and metrics' view of the request.
	info         *requestInfo
	method, path string
	route        string
}

// parkLongPoll takes the connection of r over and parks its long-poll;
// false when it could not (the caller waits as before).
func (a *API) parkLongPoll(w http.ResponseWriter, r *http.Request, parked *syncer.Parked) bool {
	info, _ := r.Context().Value(requestInfoKey{}).(*requestInfo)
	if info == nil || !a.longPolls.enter() {
		return false
	}
	header := w.Header().Clone()
	if r.ProtoMinor == 0 && !r.Close {
		// An HTTP/1.0 client that asked to keep the connection is told
		// it is kept, as net/http tells it.
		header.Set("Connection", "keep-alive")
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		a.longPolls.wg.Done()
		return false
	}
	p := &parkedPoll{api: a, conn: conn, parked: parked, header: header, closeAfter: r.Close,
		info: info, method: r.Method, path: r.URL.Path, route: routePattern(r.Context())}
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		p.early = bytes.Clone(early)
	}
	_ = conn.SetDeadline(time.Time{})
	info.detached = true
	a.longPolls.parked.Add(1)
	parked.Register(p.waitEnded)
	return true
}

// waitEnded queues the answer (the notifier calls it, under its lock).
func (p *parkedPoll) waitEnded(woken bool) {
	p.api.longPolls.answers.push(p, woken)
}

// answer runs on a worker of the answer queue once the wait ended: it
// answers, or parks again when the change that woke it gives nothing to
// answer.
func (p *parkedPoll) answer(woken bool) {
	defer func() {
		if v := recover(); v != nil {
			p.api.Logger.Error("parked long-poll panicked",
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			_ = p.conn.Close()
			p.done(false)
		}
	}()
	// Not the request's context: that one ended when the handler
	// returned.
	ctx := context.Background()
	resp, err := p.parked.Resume(ctx, woken)
	if errors.Is(err, syncer.ErrParked) {
		p.parked.Register(p.waitEnded)
		return
	}
	rec := &renderedResponse{header: p.header}
	if err != nil {
		m, known := toMatrixError(err)
		if !known {
			p.api.Logger.LogAttrs(ctx, slog.LevelError, "request failed",
				slog.String("request_id", p.info.id), slog.String("error", err.Error()))
		}
		writeMatrixError(rec, m)
	} else {
		writeSyncAnswer(rec, resp)
	}
	p.api.recordRequest(ctx, p.info, p.method, p.path, p.route, rec.status)
	p.done(p.write(rec))
}

// write sends the answer on the connection; false when the connection
// must not serve another request.
func (p *parkedPoll) write(rec *renderedResponse) bool {
	h := &p.api.longPolls
	h.mu.Lock()
	closeAfter := p.closeAfter || h.closing
	h.mu.Unlock()
	out := rec.httpResponse(closeAfter)
	_ = p.conn.SetWriteDeadline(time.Now().Add(longPollWriteTimeout))
	if _, err := p.conn.Write(out); err != nil {
		h.writeFailed.Add(1)
		return false
	}
	_ = p.conn.SetWriteDeadline(time.Time{})
	return !closeAfter
}

// done ends the parked long-poll: its connection goes back to the server
// (keepAlive) or is closed.
func (p *parkedPoll) done(keepAlive bool) {
	h := &p.api.longPolls
	h.answered.Add(1)
	if keepAlive {
		h.handedBack.Add(1)
		h.handBack(withEarlyBytes(p.conn, p.early))
	} else {
		h.closed.Add(1)
		_ = p.conn.Close()
	}
	h.parked.Add(-1)
	h.wg.Done()
}

// renderedResponse is an http.ResponseWriter into memory: a parked
// long-poll's answer goes through the same writeJSON and
// writeMatrixError as every other, then onto the connection.
type renderedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *renderedResponse) Header() http.Header { return r.header }

func (r *renderedResponse) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *renderedResponse) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// httpResponse is the HTTP/1.1 response of r, status line, headers (with
// Date, Content-Length and, with closeAfter, Connection: close) and body,
// in one buffer of the right size: one write on the connection.
// http.Response.Write copied the body through a buffer it grew, twice the
// body's size cleared at every answer of a fan-out.
func (r *renderedResponse) httpResponse(closeAfter bool) []byte {
	r.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	r.header.Set("Content-Length", strconv.Itoa(r.body.Len()))
	if closeAfter {
		r.header.Set("Connection", "close")
	}
	var head bytes.Buffer
	head.Grow(512)
	fmt.Fprintf(&head, "HTTP/1.1 %03d %s\r\n", r.status, http.StatusText(r.status))
	_ = r.header.Write(&head)
	head.WriteString("\r\n")
	out := make([]byte, 0, head.Len()+r.body.Len())
	return append(append(out, head.Bytes()...), r.body.Bytes()...)
}

// withEarlyBytes is conn with early read again first: the bytes net/http
// had buffered past the long-poll's request when it was hijacked.
func withEarlyBytes(conn net.Conn, early []byte) net.Conn {
	if len(early) == 0 {
		return conn
	}
	return &earlyBytesConn{Conn: conn, early: early}
}

type earlyBytesConn struct {
	net.Conn
	early []byte
}

func (c *earlyBytesConn) Read(b []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(b, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
