package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/users"
)

// wsConn is one authenticated WebSocket connection. Its goroutines: the
// reader (the handler's own), one for the sync stream, one per request in
// flight, a writer while frames are queued and a pinger while a ping is
// in flight. An idle connection keeps only the first two: with tens of
// thousands of them, each parked goroutine's stack counts (issue #9).
// Only the writer writes data frames, from a bounded queue.
type wsConn struct {
	api     *API
	ws      *websocket.Conn
	limits  wsLimits
	upgrade *http.Request

	// ctx ends when the connection does: requests and the stream stop.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup

	requester users.Requester
	token     string

	out      chan wsOutFrame
	inFlight chan struct{}
	// writing is set while a writer goroutine runs (startWriter).
	writing atomic.Bool
	// pinger fires the keep-alive ping; its function runs only for the
	// ping itself and sets the next one.
	pingMu sync.Mutex
	pinger *time.Timer

	// The sync stream: a "sync" frame replaces it (generation gen).
	syncGen  atomic.Uint64
	syncStop context.CancelFunc
	syncDone chan struct{}
	// queuedSync counts batches built and not yet fully written (queued
	// or being written); maxQueuedSync
	// is its high-water mark, syncBatches the batches built.
	queuedSync    atomic.Int32
	maxQueuedSync atomic.Int32
	syncBatches   atomic.Int64
}

// wsOutFrame is one frame waiting for the writer.
type wsOutFrame struct {
	data []byte
	// syncGen is the stream generation of a sync batch (0 otherwise): a
	// batch of a replaced stream is dropped, not written.
	syncGen uint64
	// written, when not nil, is closed once the frame is written or
	// dropped: its producer waits for it before producing more.
	written chan struct{}
}

// wsInFrame is any frame a client sends; Type says which fields apply.
type wsInFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// request
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
	// sync
	Since       *string         `json:"since"`
	Filter      json.RawMessage `json:"filter"`
	FullState   bool            `json:"full_state"`
	SetPresence string          `json:"set_presence"`
	// UseStateAfter: batches carry state_after, not state (/sync's
	// use_state_after).
	UseStateAfter bool `json:"use_state_after"`
}

// serve runs the connection until it closes.
func (c *wsConn) serve() {
	defer c.cancel()
	req, token, ok := c.authenticate()
	if !ok {
		return
	}
	c.requester, c.token = req, token
	c.activity()
	c.pingMu.Lock()
	c.pinger = time.AfterFunc(c.limits.pingInterval, c.ping)
	c.pingMu.Unlock()
	c.send(c.ctx, wsOutFrame{data: mustMarshal(map[string]any{
		"type": "authenticated", "user_id": req.UserID, "device_id": req.DeviceID,
	})})
	c.readLoop()
	c.closeWith(websocket.StatusNormalClosure, "")
	c.stopSync()
	c.pingMu.Lock()
	c.pinger.Stop()
	c.pingMu.Unlock()
	c.wg.Wait()
}

// readLoop reads frames until the connection ends or a frame is bad. Read
// has no deadline: the connection ends through closeWith, the peer or the
// pinger, and each ends the read.
func (c *wsConn) readLoop() {
	for {
		typ, data, err := c.ws.Read(context.WithoutCancel(c.ctx))
		if err != nil {
			// The peer closed, the read limit was hit (the library closes
			// with 1009) or the connection is closing.
			return
		}
		c.activity()
		if typ != websocket.MessageText {
			c.closeWith(websocket.StatusUnsupportedData, "M_NOT_JSON: frames must be text frames holding JSON")
			return
		}
		var f wsInFrame
		if err := decodeFrame(data, &f); err != nil {
			c.closeWith(wsCloseBadFrame, closeReason(err))
			return
		}
		switch f.Type {
		case "request":
			if !c.handleRequest(f) {
				return
			}
		case "sync":
			c.startSync(f)
		case "auth":
			c.closeWith(wsCloseBadFrame, "M_UNRECOGNIZED: the connection is already authenticated")
			return
		default:
			c.closeWith(wsCloseBadFrame, closeReason(errUnknownFrame(f.Type)))
			return
		}
	}
}

// send queues f for the writer; false when the connection ended first.
func (c *wsConn) send(ctx context.Context, f wsOutFrame) bool {
	select {
	case c.out <- f:
		c.startWriter()
		return true
	case <-ctx.Done():
		f.done()
		return false
	}
}

func (f wsOutFrame) done() {
	if f.written != nil {
		close(f.written)
	}
}

// startWriter starts the writer unless one runs: a frame was queued.
func (c *wsConn) startWriter() {
	if c.writing.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go c.writeLoop()
	}
}

// writeLoop writes the queued frames in order and ends when none is left.
// A write that the client does not take within writeTimeout ends the
// connection.
func (c *wsConn) writeLoop() {
	defer c.wg.Done()
	for {
		var f wsOutFrame
		select {
		case <-c.ctx.Done():
			return
		case f = <-c.out:
		default:
			c.writing.Store(false)
			// A frame queued between the look at the queue and the flag's
			// clearing found a writer running and started none: take it
			// on, unless a new writer already did.
			if len(c.out) == 0 || !c.writing.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		if f.syncGen != 0 && f.syncGen != c.syncGen.Load() {
			c.queuedSync.Add(-1)
			f.done()
			continue
		}
		// Not c.ctx: a write cut off mid-frame would break the close
		// handshake that follows it.
		wctx, cancel := context.WithTimeout(context.Background(), c.limits.writeTimeout)
		err := c.ws.Write(wctx, websocket.MessageText, f.data)
		cancel()
		if f.syncGen != 0 {
			c.queuedSync.Add(-1)
		}
		f.done()
		if err != nil {
			c.closeWith(websocket.StatusPolicyViolation, "the client did not read in time")
			return
		}
	}
}

// ping is the keep-alive, every pingInterval: a peer that does not answer
// within pingTimeout is gone, and the connection ends.
func (c *wsConn) ping() {
	if c.ctx.Err() != nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.Background(), c.limits.pingTimeout)
	err := c.ws.Ping(pctx)
	cancel()
	if err != nil {
		c.closeWith(websocket.StatusPolicyViolation, "no pong in time")
		return
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.ctx.Err() == nil {
		c.pinger.Reset(c.limits.pingInterval)
	}
}

// closeWith ends the connection with code and reason; only the first call
// counts. The close frame goes out before the connection's context ends:
// ending it first stops the read loop, and the library then drops the
// connection its own way, without the close frame, or leaves the close
// handshake nobody to read the answer (TestWebSocketNoPongCloses). Close
// waits for the client's answer at most 5 s, then drops the connection.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		_ = c.ws.Close(code, reason)
		c.cancel()
	})
}

// activity is called for every frame the client sends once it is
// authenticated: the presence heartbeat of issue #5 ("a WebSocket frame
// counts as activity"). Presence hooks in with OnWebSocketActivity.
func (c *wsConn) activity() {
	if c.requester.UserID == "" {
		return
	}
	if f := c.api.ws.onActivity.Load(); f != nil && *f != nil {
		(*f)(c.ctx, c.requester.UserID, c.requester.DeviceID)
	}
}

// OnWebSocketActivity sets the function told of every frame an
// authenticated WebSocket client sends, and of each new connection
// (presence's heartbeat); nil removes it. It must be quick: it runs on the
// connection's reader.
func (a *API) OnWebSocketActivity(f func(ctx context.Context, user id.UserID, device id.DeviceID)) {
	if a.ws != nil {
		a.ws.onActivity.Store(&f)
	}
}

// decodeFrame decodes one client frame, with the errcodes of a request
// body: M_NOT_JSON when it is not a JSON object, M_BAD_JSON when a field
// has the wrong type.
func decodeFrame(data []byte, f *wsInFrame) error {
	// JSON's own whitespace only (bytes.TrimSpace would also take \v).
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(data) {
		return errNotJSONFrame
	}
	if err := json.Unmarshal(data, f); err != nil {
		return errBadFrame
	}
	return nil
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the transport's own frame types reach here.
		panic(err)
	}
	return b
}
