package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Transports a receiver can sync over.
const (
	longPoll  = "longpoll"
	webSocket = "ws"
)

// wsConnectPath is Parley's WebSocket transport (docs/websocket.md); other
// homeservers answer it 404, and the tool reports the error.
const wsConnectPath = "/_matrix/client/unstable/im.parley.ws/v1/connect"

// epoch is the run's clock origin; times in messages are nanoseconds since
// it (monotonic, since sender and receiver are in this process).
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

// delivery is one of the tool's messages as a receiver decoded it.
type delivery struct {
	room   string
	seq    int64
	sentNS int64 // when its send started
	atNS   int64 // when the receiver had decoded its batch
	member int   // which receiver, where the scenario tells them apart
}

// syncBody is the part of a /sync response the tool reads.
type syncBody struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join map[string]struct {
			Timeline struct {
				Events []struct {
					Type    string `json:"type"`
					Content struct {
						Seq  *int64 `json:"im.parley.bench.seq"`
						Sent int64  `json:"im.parley.bench.t"`
					} `json:"content"`
				} `json:"events"`
				Limited bool `json:"limited"`
			} `json:"timeline"`
		} `json:"join"`
	} `json:"rooms"`
}

// connStats counts over a group of receivers.
type connStats struct {
	held    atomic.Int64 // receivers whose first batch arrived and whose last attempt succeeded
	errors  atomic.Int64 // failed sync requests or dropped connections
	limited atomic.Int64 // timelines that came back limited (messages skipped)
}

// receiver is one device syncing: long-poll /sync or the WebSocket
// stream. After the first (initial) batch it reports every message of the
// tool it receives to onEvent.
type receiver struct {
	c         *client
	u         *user
	transport string
	// pollTimeout is the long-poll's timeout parameter.
	pollTimeout time.Duration
	onEvent     func(delivery)
	stats       *connStats
	ready       chan struct{} // closed after the first batch
	// stopped is closed when run gives up for good on an error that
	// retrying cannot fix (err says which); run returns then.
	stopped chan struct{}
	err     error

	healthy bool
	since   string
}

func newReceiver(c *client, u *user, transport string, stats *connStats, onEvent func(delivery)) *receiver {
	return &receiver{c: c, u: u, transport: transport, pollTimeout: 30 * time.Second,
		onEvent: onEvent, stats: stats, ready: make(chan struct{}), stopped: make(chan struct{})}
}

// run syncs until ctx is done, reconnecting after failures.
func (r *receiver) run(ctx context.Context) {
	for ctx.Err() == nil {
		var err error
		if r.transport == webSocket {
			err = r.runWS(ctx)
		} else {
			err = r.poll(ctx)
		}
		if err != nil && ctx.Err() == nil {
			r.failed()
			if permanent(err) {
				r.err = err
				close(r.stopped)
				break
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	if r.healthy {
		r.stats.held.Add(-1)
		r.healthy = false
	}
}

func (r *receiver) failed() {
	r.stats.errors.Add(1)
	if r.healthy {
		r.stats.held.Add(-1)
		r.healthy = false
	}
}

// batch handles one sync response.
func (r *receiver) batch(b *syncBody) {
	at := now()
	first := r.since == ""
	r.since = b.NextBatch
	if !r.healthy {
		r.healthy = true
		r.stats.held.Add(1)
	}
	if first {
		close(r.ready)
		return
	}
	for roomID, room := range b.Rooms.Join {
		if room.Timeline.Limited {
			r.stats.limited.Add(1)
		}
		for _, ev := range room.Timeline.Events {
			if ev.Type == "m.room.message" && ev.Content.Seq != nil && r.onEvent != nil {
				r.onEvent(delivery{room: roomID, seq: *ev.Content.Seq, sentNS: ev.Content.Sent, atNS: at})
			}
		}
	}
}

// poll runs long-poll GET /sync requests until one fails.
func (r *receiver) poll(ctx context.Context) error {
	for ctx.Err() == nil {
		q := url.Values{"filter": {r.u.filter}}
		if r.since != "" {
			q.Set("since", r.since)
			q.Set("timeout", strconv.FormatInt(r.pollTimeout.Milliseconds(), 10))
		} else {
			q.Set("timeout", "0")
		}
		var b syncBody
		if err := r.c.do(ctx, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), r.u.Token, nil, &b); err != nil {
			return err
		}
		r.batch(&b)
	}
	return nil
}

// wsFrame is a frame of the WebSocket transport.
type wsFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// dialWS opens an authenticated connection and reads the server's
// "authenticated" frame.
func dialWS(ctx context.Context, c *client, u *user) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := http.Header{"Authorization": {"Bearer " + u.Token}}
	wsURL := "ws" + strings.TrimPrefix(c.base, "http") + wsConnectPath
	conn, res, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: c.hc})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			// The upgrade was answered like any request: 404 from a server
			// without Parley's transport, 401 for a bad token.
			me := &matrixError{Status: res.StatusCode}
			if res.Body != nil {
				me.raw, _ = io.ReadAll(io.LimitReader(res.Body, 64<<10))
				_ = json.Unmarshal(me.raw, me)
			}
			if res.StatusCode == http.StatusNotFound {
				return nil, fmt.Errorf("the server has no WebSocket transport at %s (use -transport longpoll): %w", wsConnectPath, me)
			}
			return nil, fmt.Errorf("websocket upgrade: %w", me)
		}
		return nil, fmt.Errorf("websocket dial: %w", err)
	}
	conn.SetReadLimit(64 << 20)
	var f wsFrame
	if err := readFrame(dctx, conn, &f); err != nil {
		conn.CloseNow()
		return nil, err
	}
	if f.Type != "authenticated" {
		conn.CloseNow()
		return nil, fmt.Errorf("websocket: first frame %q, want authenticated", f.Type)
	}
	return conn, nil
}

func readFrame(ctx context.Context, conn *websocket.Conn, f *wsFrame) error {
	_, data, err := conn.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, f)
}

// runWS opens a connection and follows its sync stream (resuming from
// the last next_batch after a reconnect) until the connection ends.
func (r *receiver) runWS(ctx context.Context) error {
	conn, err := dialWS(ctx, r.c, r.u)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	start := map[string]any{"type": "sync", "id": "s", "filter": r.u.filter, "since": nil}
	if r.since != "" {
		start["since"] = r.since
	}
	data, _ := json.Marshal(start)
	if err := conn.Write(ctx, websocket.MessageText, data); err != nil {
		return err
	}
	for {
		var f wsFrame
		if err := readFrame(ctx, conn, &f); err != nil {
			if ctx.Err() != nil {
				conn.Close(websocket.StatusNormalClosure, "")
			}
			return err
		}
		switch f.Type {
		case "sync":
			var b syncBody
			if err := json.Unmarshal(f.Body, &b); err != nil {
				return fmt.Errorf("sync frame: %w", err)
			}
			r.batch(&b)
		case "sync_error":
			return fmt.Errorf("sync_error %d: %s", f.Status, f.Body)
		}
	}
}

// permanent reports whether a sync error will not go away by retrying:
// a 4xx other than 429 (an unknown token, a server without the WebSocket
// transport answering the upgrade 404, a refused filter).
func permanent(err error) bool {
	var me *matrixError
	return errors.As(err, &me) && me.Status/100 == 4 && me.Status != http.StatusTooManyRequests
}

// waitReady waits until every receiver has its first batch.
func waitReady(ctx context.Context, rs []*receiver) error {
	for _, r := range rs {
		select {
		case <-r.ready:
		case <-r.stopped:
			return fmt.Errorf("%s sync of %s: %w", r.transport, r.u.ID, r.err)
		case <-ctx.Done():
			return errors.New("receivers did not complete their first sync in time")
		}
	}
	return nil
}

// wsRequester sends Client-Server API requests as request frames over one
// WebSocket connection (docs/websocket.md, "Requests") and matches the
// responses by id.
type wsRequester struct {
	conn    *websocket.Conn
	mu      sync.Mutex
	next    int64
	waiting map[string]chan wsFrame
	done    chan struct{} // closed when the reader stops
}

func newWSRequester(ctx context.Context, c *client, u *user) (*wsRequester, error) {
	conn, err := dialWS(ctx, c, u)
	if err != nil {
		return nil, err
	}
	w := &wsRequester{conn: conn, waiting: map[string]chan wsFrame{}, done: make(chan struct{})}
	go w.read(ctx)
	return w, nil
}

func (w *wsRequester) read(ctx context.Context) {
	defer close(w.done)
	for {
		var f wsFrame
		if err := readFrame(ctx, w.conn, &f); err != nil {
			return
		}
		if f.Type != "response" {
			continue
		}
		w.mu.Lock()
		ch := w.waiting[f.ID]
		delete(w.waiting, f.ID)
		w.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// do sends one request frame and decodes the response's body into out.
func (w *wsRequester) do(ctx context.Context, method, path string, body, out any) error {
	w.mu.Lock()
	w.next++
	reqID := "r" + strconv.FormatInt(w.next, 10)
	ch := make(chan wsFrame, 1)
	w.waiting[reqID] = ch
	w.mu.Unlock()
	data, err := json.Marshal(map[string]any{"type": "request", "id": reqID, "method": method, "path": path, "body": body})
	if err != nil {
		return err
	}
	if err := w.conn.Write(ctx, websocket.MessageText, data); err != nil {
		return err
	}
	select {
	case f := <-ch:
		if f.Status/100 != 2 {
			me := &matrixError{Status: f.Status, raw: f.Body}
			_ = json.Unmarshal(f.Body, me)
			return me
		}
		if out != nil {
			return json.Unmarshal(f.Body, out)
		}
		return nil
	case <-w.done:
		return errors.New("websocket closed before the response")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *wsRequester) close() { w.conn.Close(websocket.StatusNormalClosure, "") }
