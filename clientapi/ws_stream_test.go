package clientapi_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

// bigTimeline is an inline filter whose timeline limit is higher than any
// test sends, so that merged batches are never limited.
var bigTimeline = obj{"room": obj{"timeline": obj{"limit": 200}}}

func TestWebSocketSyncStream(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"preset": "private_chat"})
	first := sendText(t, s, tok, room, "t0", "before")
	c := connectWS(t, s, tok)
	c.send(obj{"type": "sync", "id": "s1", "since": nil, "filter": bigTimeline})

	initial := c.nextSync()
	t.Run("the first batch is an initial sync", func(t *testing.T) {
		if !slices.Contains(timeline(initial, room), first) || initial.NextBatch == "" {
			t.Errorf("initial batch lacks %s: %v", first, timeline(initial, room))
		}
	})
	t.Run("each commit is pushed, following on from the previous next_batch", func(t *testing.T) {
		prev := initial.NextBatch
		for i := range 3 {
			ev := sendText(t, s, tok, room, fmt.Sprintf("t%d", i+1), "live")
			b := c.nextSync()
			if got := timeline(b, room); !slices.Equal(got, []string{ev}) {
				t.Errorf("batch %d timeline %v, want [%s]", i, got, ev)
			}
			// The same batch over HTTP from the previous token.
			if got := timeline(mustSync(t, s, tok, prev, "filter", `{"room":{"timeline":{"limit":200}}}`), room); !slices.Equal(got, []string{ev}) {
				t.Errorf("HTTP /sync since the previous token: %v", got)
			}
			prev = b.NextBatch
		}
	})
	t.Run("a request sent on the connection is pushed back on the stream", func(t *testing.T) {
		f := c.request("r", http.MethodPut, v3+"/rooms/"+url.PathEscape(room)+"/send/m.room.message/ws1", obj{"msgtype": "m.text", "body": "mine"})
		evID, _ := f.object(t)["event_id"].(string)
		if got := timeline(c.nextSync(), room); !slices.Equal(got, []string{evID}) {
			t.Errorf("timeline %v, want [%s]", got, evID)
		}
	})
	t.Run("a restart from an older token replays from it, under the new id", func(t *testing.T) {
		later := sendText(t, s, tok, room, "t9", "after the restart point")
		c.nextSync()
		c.send(obj{"type": "sync", "id": "again", "since": initial.NextBatch, "filter": bigTimeline})
		f := c.next()
		if f.Type != "sync" || f.ID != "again" {
			t.Fatalf("frame %+v", f)
		}
		if got := timeline(f.sync(t), room); len(got) != 5 || got[4] != later {
			t.Errorf("replayed timeline %v, want the 5 events since the initial batch", got)
		}
	})
	t.Run("a bad since token stops the stream with a sync_error", func(t *testing.T) {
		c.send(obj{"type": "sync", "id": "s2", "since": "garbage"})
		f := c.next()
		if f.Type != "sync_error" || f.ID != "s2" || f.Status != http.StatusBadRequest || f.object(t)["errcode"] == nil {
			t.Errorf("frame %+v %s", f, f.Body)
		}
	})
}

// TestWebSocketSlowClient: a client that stops reading holds at most one
// batch in the server's memory however much commits, and when it reads
// again it gets everything, merged, with nothing missing.
func TestWebSocketSlowClient(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)

	c := dialWS(t, s, wsDialOpts{token: bobTok, rcvbuf: 4096})
	if f := c.next(); f.Type != "authenticated" {
		t.Fatalf("frame %+v", f)
	}
	c.send(obj{"type": "sync", "filter": bigTimeline})
	c.nextSync()

	// Bob reads nothing now. 200 messages of 50 KB are more than the
	// kernel buffers on both ends can hold (a 4 KB receive buffer, a send
	// buffer of at most net.ipv4.tcp_wmem's 4 MB): the server must wait.
	const n = 200
	pad := strings.Repeat("x", 50<<10)
	var sent []string
	for i := range n {
		sent = append(sent, sendText(t, s, aliceTok, room, fmt.Sprintf("t%d", i), fmt.Sprintf("%d %s", i, pad)))
	}
	stats := s.App.Client().WebSocketStats()
	t.Run("at most one batch is queued per connection", func(t *testing.T) {
		if stats.MaxQueuedSyncBatches > 1 || stats.MaxQueuedSyncBatches < 1 {
			t.Errorf("max queued batches %d, want 1", stats.MaxQueuedSyncBatches)
		}
	})

	var got []string
	batches := 0
	for len(got) < n {
		b := c.nextSync()
		batches++
		if b.Rooms.Join[room].Timeline.Limited {
			t.Fatal("a batch is limited: events were left out")
		}
		got = append(got, timeline(b, room)...)
	}
	t.Run("after reading again, every event arrives once and in order", func(t *testing.T) {
		if !slices.Equal(got, sent) {
			t.Errorf("got %d events, want the %d sent in order", len(got), len(sent))
		}
	})
	t.Run("the backlog came merged into fewer batches", func(t *testing.T) {
		if batches >= n {
			t.Errorf("%d batches for %d events: nothing was merged", batches, n)
		}
		t.Logf("%d events in %d batches; %d batches built in all", n, batches, s.App.Client().WebSocketStats().SyncBatches)
	})
}

func TestWebSocketResume(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"preset": "private_chat"})
	c := connectWS(t, s, tok)
	c.send(obj{"type": "sync", "filter": bigTimeline})
	c.nextSync()
	a := sendText(t, s, tok, room, "a", "a")
	b := c.nextSync()
	if !slices.Equal(timeline(b, room), []string{a}) {
		t.Fatalf("timeline %v", timeline(b, room))
	}
	_ = c.conn.Close(websocket.StatusNormalClosure, "")

	// Missed while disconnected.
	missed := []string{sendText(t, s, tok, room, "b", "b"), sendText(t, s, tok, room, "c", "c")}

	c2 := connectWS(t, s, tok)
	c2.send(obj{"type": "sync", "since": b.NextBatch, "filter": bigTimeline})
	var got []string
	for len(got) < len(missed) {
		got = append(got, timeline(c2.nextSync(), room)...)
	}
	if !slices.Equal(got, missed) {
		t.Errorf("after resume %v, want %v (nothing missed, nothing repeated)", got, missed)
	}
}

// TestWebSocketAgainstLongPoll drives alice over long-poll /sync and bob
// over the WebSocket through one conversation, step by step, and checks
// that both saw the same messages, typing notifications and read receipts
// in the same order.
func TestWebSocketAgainstLongPoll(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	filter := `{"room":{"timeline":{"limit":200}}}`

	since := mustSync(t, s, aliceTok, "", "filter", filter).NextBatch
	ws := connectWS(t, s, bobTok)
	ws.send(obj{"type": "sync", "filter": bigTimeline})
	ws.nextSync()

	sendPath := func(txn string) string {
		return v3 + "/rooms/" + url.PathEscape(room) + "/send/m.room.message/" + txn
	}
	receiptPath := func(event string) string {
		return v3 + "/rooms/" + url.PathEscape(room) + "/receipt/m.read/" + url.PathEscape(event)
	}
	var bobsMessage, alicesReply string
	typingBody := func(on bool) obj {
		if on {
			return obj{"typing": true, "timeout": 30000}
		}
		return obj{"typing": false}
	}
	steps := []struct {
		name   string
		expect int // what each user sees of it: events and typing changes
		do     func(t *testing.T)
	}{
		{"alice sends over HTTP", 1, func(t *testing.T) { sendText(t, s, aliceTok, room, "a1", "hello bob") }},
		{"bob sends over the WebSocket", 1, func(t *testing.T) {
			f := ws.request("b1", http.MethodPut, sendPath("b1"), obj{"msgtype": "m.text", "body": "hi alice"})
			if f.Status != 200 {
				t.Fatalf("send %d %s", f.Status, f.Body)
			}
			bobsMessage, _ = f.object(t)["event_id"].(string)
		}},
		{"bob types", 1, func(t *testing.T) {
			if f := ws.request("b2", http.MethodPut, typingPath(room, bob), typingBody(true)); f.Status != 200 {
				t.Fatalf("typing %d %s", f.Status, f.Body)
			}
		}},
		{"alice types too", 1, func(t *testing.T) {
			apptest.MustStatus(t, s.Do(t, http.MethodPut, typingPath(room, alice), aliceTok, typingBody(true)), 200)
		}},
		{"bob stops typing", 1, func(t *testing.T) {
			if f := ws.request("b3", http.MethodPut, typingPath(room, bob), typingBody(false)); f.Status != 200 {
				t.Fatalf("typing %d %s", f.Status, f.Body)
			}
		}},
		{"alice reads bob's message", 1, func(t *testing.T) {
			apptest.MustStatus(t, s.Do(t, http.MethodPost, receiptPath(bobsMessage), aliceTok, obj{}), 200)
		}},
		{"alice sends a reply", 1, func(t *testing.T) { alicesReply = sendText(t, s, aliceTok, room, "a2", "how are you") }},
		{"bob reads it, over the WebSocket", 1, func(t *testing.T) {
			if f := ws.request("b6", http.MethodPost, receiptPath(alicesReply), obj{}); f.Status != 200 {
				t.Fatalf("receipt %d %s", f.Status, f.Body)
			}
		}},
		{"bob sends twice", 2, func(t *testing.T) {
			for _, txn := range []string{"b4", "b5"} {
				if f := ws.request(txn, http.MethodPut, sendPath(txn), obj{"msgtype": "m.text", "body": txn}); f.Status != 200 {
					t.Fatalf("send %d %s", f.Status, f.Body)
				}
			}
		}},
	}

	// observe turns one batch into what a user sees: messages by event id,
	// the typers whenever they change, and read receipts.
	observe := func(b syncBody) []string {
		var out []string
		jr := b.Rooms.Join[room]
		for _, ev := range jr.Timeline.Events {
			out = append(out, "event "+ev.EventID)
		}
		if jr.Ephemeral != nil {
			for _, ev := range jr.Ephemeral.Events {
				switch ev.Type {
				case "m.typing":
					out = append(out, "typing "+fmt.Sprint(ev.Content["user_ids"]))
				case "m.receipt":
					out = append(out, "receipt "+fmt.Sprint(ev.Content))
				}
			}
		}
		return out
	}
	var viaHTTP, viaWS []string
	for _, step := range steps {
		step.do(t)
		// Each side reads until it has seen what the step did; the steps
		// run one at a time, so what each side saw is comparable.
		for n := 0; n < step.expect; {
			b := mustSync(t, s, aliceTok, since, "filter", filter, "timeout", "20000")
			since = b.NextBatch
			seen := observe(b)
			viaHTTP = append(viaHTTP, seen...)
			n += len(seen)
		}
		for n := 0; n < step.expect; {
			seen := observe(ws.nextSync())
			viaWS = append(viaWS, seen...)
			n += len(seen)
		}
	}
	if !slices.Equal(viaHTTP, viaWS) {
		t.Errorf("the two users saw different things:\n long-poll %v\n websocket %v", viaHTTP, viaWS)
	}
	kinds := map[string]int{}
	for _, o := range viaWS {
		kind, _, _ := strings.Cut(o, " ")
		kinds[kind]++
	}
	if want := map[string]int{"event": 5, "typing": 3, "receipt": 2}; !maps.Equal(kinds, want) {
		t.Errorf("saw %v, want %v: %v", kinds, want, viaWS)
	}
}

func TestWebSocketConnection(t *testing.T) {
	s := apptest.Start(t)
	alice, tok := s.Register(t, "alice", pw)

	t.Run("every frame after authentication is activity for presence", func(t *testing.T) {
		var frames atomic.Int32
		var who atomic.Value
		s.App.Client().OnWebSocketActivity(func(_ context.Context, user id.UserID, _ id.DeviceID) {
			who.Store(string(user))
			frames.Add(1)
		})
		defer s.App.Client().OnWebSocketActivity(nil)
		c := connectWS(t, s, tok)
		c.request("a", http.MethodGet, v3+"/account/whoami", nil)
		c.request("b", http.MethodGet, v3+"/account/whoami", nil)
		// The connection itself, then each frame.
		if n := frames.Load(); n != 3 || who.Load() != alice {
			t.Errorf("%d activity calls for %v, want 3 for %s", n, who.Load(), alice)
		}
	})

	t.Run("permessage-deflate is negotiated when offered", func(t *testing.T) {
		c := dialWS(t, s, wsDialOpts{token: tok, compress: true})
		if ext := c.res.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
			t.Errorf("extensions %q", ext)
		}
		if f := c.next(); f.Type != "authenticated" {
			t.Errorf("frame %+v", f)
		}
		f := c.request("w", http.MethodGet, v3+"/account/whoami", nil)
		if f.Status != http.StatusOK {
			t.Errorf("whoami over a compressed connection: %d", f.Status)
		}
	})
	t.Run("requests beyond the in-flight cap answer 429 at once", func(t *testing.T) {
		c := connectWS(t, s, tok)
		since := mustSync(t, s, tok, "").NextBatch
		// Long-polls over the connection hold their slots.
		const maxInFlight = 32
		for i := range maxInFlight + 1 {
			c.send(obj{"type": "request", "id": fmt.Sprint(i), "method": "GET",
				"path": v3 + "/sync?timeout=60000&since=" + url.QueryEscape(since)})
		}
		f := c.next()
		if f.ID != fmt.Sprint(maxInFlight) || f.Status != http.StatusTooManyRequests || f.object(t)["errcode"] != "M_LIMIT_EXCEEDED" {
			t.Errorf("first answer %+v %s, want 429 for request %d", f, f.Body, maxInFlight)
		}
		// A commit answers the long-polls: they were running.
		newRoom(t, s, tok, nil)
		f = c.next()
		if f.Type != "response" || f.Status != http.StatusOK {
			t.Errorf("long-poll answer %+v", f)
		}
	})
	t.Run("server shutdown closes with 1001 going away", func(t *testing.T) {
		c := connectWS(t, s, tok)
		c.send(obj{"type": "sync"})
		c.nextSync()
		s.Stop(t)
		if ce := c.closed(); ce.Code != websocket.StatusGoingAway {
			t.Errorf("closed with %d %q", ce.Code, ce.Reason)
		}
	})
}
