package clientapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/clientapi"
)

// waitWS polls the server's WebSocket stats until ok holds.
func waitWS(t *testing.T, s *apptest.Server, what string, ok func(clientapi.WebSocketStats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(s.App.Client().WebSocketStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, s.App.Client().WebSocketStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebSocketKeepAlive: the pinger pings again and again while the peer
// answers, and an idle connection keeps no writer goroutine between its
// frames (issue #9: goroutines per idle connection).
func TestWebSocketKeepAlive(t *testing.T) {
	defer clientapi.SetWebSocketPing(10*time.Millisecond, 10*time.Second)()
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)

	pings := make(chan struct{}, 1)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+wsConnectPath, &websocket.DialOptions{
		HTTPHeader: h,
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// The reader answers the pings.
	go func() {
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	for i := range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatalf("%d pings, want 3: the keep-alive stopped", i)
		}
	}
	waitWS(t, s, "an idle connection keeps a writer", func(st clientapi.WebSocketStats) bool {
		return st.Connections == 1 && st.Writers == 0
	})
}

// TestWebSocketNoPongCloses: a peer that answers no ping in time is
// disconnected with 1008.
func TestWebSocketNoPongCloses(t *testing.T) {
	defer clientapi.SetWebSocketPing(10*time.Millisecond, 50*time.Millisecond)()
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	c := dialWS(t, s, wsDialOpts{token: tok})
	// Not reading: the client's library answers pings only from Read.
	// Ended, not Connections == 0: the connection is counted open only
	// after its upgrade is answered, so a loaded server can show 0 before
	// it counted it, and reading then would answer the pings.
	waitWS(t, s, "the silent peer is still connected", func(st clientapi.WebSocketStats) bool {
		return st.Ended == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := c.conn.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation {
			t.Fatalf("read ended with %v, want close 1008", err)
		}
		return
	}
}
