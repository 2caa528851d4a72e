package clientapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/apptest"
)

const wsConnectPath = "/_matrix/client/unstable/im.parley.ws/v1/connect"

// wsFrame is any frame the server sends.
type wsFrame struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
	UserID      string          `json:"user_id"`
	DeviceID    string          `json:"device_id"`
	ContentType string          `json:"content_type"`
}

// object decodes the body as a JSON object.
func (f wsFrame) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(f.Body, &m); err != nil {
		t.Fatalf("frame body %s: %v", f.Body, err)
	}
	return m
}

// sync decodes the body of a sync frame.
func (f wsFrame) sync(t testing.TB) syncBody {
	t.Helper()
	var b syncBody
	if err := json.Unmarshal(f.Body, &b); err != nil {
		t.Fatalf("sync frame body %s: %v", f.Body, err)
	}
	return b
}

// wsClient is a test's end of one connection.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	res  *http.Response
	// syncs holds the sync frames that arrived while request waited for
	// its response; nextSync returns them first, in arrival order, so that
	// no batch of the stream is lost to the test.
	syncs []wsFrame
}

type wsDialOpts struct {
	token    string // sent as Authorization: Bearer
	compress bool
	// rcvbuf, when not 0, shrinks the client socket's receive buffer so
	// that a client that stops reading pushes back on the server soon.
	rcvbuf int
}

// dialWS opens a connection to s; it does not authenticate by frame.
func dialWS(t testing.TB, s *apptest.Server, o wsDialOpts) *wsClient {
	t.Helper()
	h := http.Header{}
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	opts := &websocket.DialOptions{HTTPHeader: h}
	if o.compress {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	if o.rcvbuf > 0 {
		d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.rcvbuf)
			})
			return errors.Join(err, serr)
		}}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+wsConnectPath, opts)
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	conn.SetReadLimit(64 << 20)
	c := &wsClient{t: t, conn: conn, res: res}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c
}

// connectWS opens an authenticated connection (header) and reads the
// "authenticated" frame.
func connectWS(t testing.TB, s *apptest.Server, token string) *wsClient {
	t.Helper()
	c := dialWS(t, s, wsDialOpts{token: token})
	if f := c.next(); f.Type != "authenticated" {
		t.Fatalf("first frame %+v, want authenticated", f)
	}
	return c
}

// send writes one frame (v encoded as JSON unless it is a string).
func (c *wsClient) send(v any) {
	c.t.Helper()
	data, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatalf("encode frame: %v", err)
		}
		data = string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(data)); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// next reads one frame; it fails the test after 20 s without one.
func (c *wsClient) next() wsFrame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	typ, data, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if typ != websocket.MessageText {
		c.t.Fatalf("frame of type %v", typ)
	}
	var f wsFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("frame %s: %v", data, err)
	}
	return f
}

// closed reads until the server closes and returns its close frame.
func (c *wsClient) closed() websocket.CloseError {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce
	}
}

// request sends a request frame and waits for its response, keeping the
// sync frames that arrive meanwhile for nextSync.
func (c *wsClient) request(id, method, path string, body any) wsFrame {
	c.t.Helper()
	frame := map[string]any{"type": "request", "id": id, "method": method, "path": path}
	if body != nil {
		frame["body"] = body
	}
	c.send(frame)
	for {
		f := c.next()
		if f.Type == "response" && f.ID == id {
			return f
		}
		if f.Type != "sync" {
			c.t.Fatalf("unexpected frame %+v", f)
		}
		c.syncs = append(c.syncs, f)
	}
}

// nextSync returns the next sync batch: one kept by request, else the
// next one read.
func (c *wsClient) nextSync() syncBody {
	c.t.Helper()
	if len(c.syncs) > 0 {
		f := c.syncs[0]
		c.syncs = c.syncs[1:]
		return f.sync(c.t)
	}
	for {
		f := c.next()
		switch f.Type {
		case "sync":
			return f.sync(c.t)
		case "sync_error":
			c.t.Fatalf("sync error %d %s", f.Status, f.Body)
		}
	}
}

// timeline lists the ids of a room's timeline events in a batch.
func timeline(b syncBody, room string) []string {
	var ids []string
	for _, ev := range b.Rooms.Join[room].Timeline.Events {
		ids = append(ids, ev.EventID)
	}
	return ids
}

// containsAll reports whether every id of want is in got.
func containsAll(got []string, want ...string) bool {
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}
