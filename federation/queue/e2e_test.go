package queue_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// syncFollower follows one user's /sync on one server.
type syncFollower struct {
	t     *testing.T
	srv   *apptest.Server
	token string
	since string
}

// until long-polls /sync until cond holds for a batch's body, up to a
// deadline; every batch is offered to cond.
func (s *syncFollower) until(what string, cond func(body map[string]any) bool) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		path := "/_matrix/client/v3/sync?timeout=1000"
		if s.since != "" {
			path += "&since=" + url.QueryEscape(s.since)
		}
		res := s.srv.Do(s.t, http.MethodGet, path, s.token, nil)
		apptest.MustStatus(s.t, res, http.StatusOK)
		s.since = res.String("next_batch")
		if cond(res.Body) {
			return
		}
	}
	s.t.Fatalf("timed out waiting for %s", what)
}

// ephemeral returns the ephemeral events of type typ in room of a sync
// body.
func ephemeral(body map[string]any, room, typ string) []map[string]any {
	var out []map[string]any
	joined, _ := body["rooms"].(map[string]any)["join"].(map[string]any)
	r, _ := joined[room].(map[string]any)
	eph, _ := r["ephemeral"].(map[string]any)
	events, _ := eph["events"].([]any)
	for _, e := range events {
		if m, _ := e.(map[string]any); m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func timeline(body map[string]any, room string) []map[string]any {
	var out []map[string]any
	joined, _ := body["rooms"].(map[string]any)["join"].(map[string]any)
	r, _ := joined[room].(map[string]any)
	tl, _ := r["timeline"].(map[string]any)
	events, _ := tl["events"].([]any)
	for _, e := range events {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// holdsEvent is a sync condition: room's timeline in the answer has the
// event eventID.
func holdsEvent(room, eventID string) func(map[string]any) bool {
	return func(b map[string]any) bool {
		for _, e := range timeline(b, room) {
			if e["event_id"] == eventID {
				return true
			}
		}
		return false
	}
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTypingReceiptsPresenceCrossServers: alice@hs1 and bob@hs2 share a
// room; what each does reaches the other's /sync over real federation.
func TestTypingReceiptsPresenceCrossServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = time.Second
	})
	hs1, hs2 := servers[0], servers[1]
	alice, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")

	res := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	res = hs2.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room)+"?server_name="+string(hs1.Config.ServerName),
		bobTok, map[string]any{})
	apptest.MustStatus(t, res, http.StatusOK)

	aliceSync := &syncFollower{t: t, srv: hs1, token: aliceTok}
	bobSync := &syncFollower{t: t, srv: hs2, token: bobTok}
	aliceSync.until("bob's join on hs1", func(b map[string]any) bool {
		for _, e := range timeline(b, room) {
			if e["type"] == "m.room.member" && e["state_key"] == bob {
				return true
			}
		}
		return false
	})
	bobSync.until("the room on hs2", func(b map[string]any) bool { return len(timeline(b, room)) > 0 })

	// A message from alice reaches bob.
	res = hs1.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/t1", aliceTok,
		map[string]any{"msgtype": "m.text", "body": "hello bob"})
	apptest.MustStatus(t, res, http.StatusOK)
	msgID := res.String("event_id")
	bobSync.until("alice's message", holdsEvent(room, msgID))

	t.Run("typing", func(t *testing.T) {
		res := hs1.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/typing/"+url.PathEscape(alice),
			aliceTok, map[string]any{"typing": true, "timeout": 20000})
		apptest.MustStatus(t, res, http.StatusOK)
		bobSync.until("alice typing on hs2", func(b map[string]any) bool {
			for _, e := range ephemeral(b, room, "m.typing") {
				if asJSON(e["content"]) == asJSON(map[string]any{"user_ids": []string{alice}}) {
					return true
				}
			}
			return false
		})
		res = hs1.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/typing/"+url.PathEscape(alice),
			aliceTok, map[string]any{"typing": false})
		apptest.MustStatus(t, res, http.StatusOK)
		bobSync.until("alice stopped typing on hs2", func(b map[string]any) bool {
			for _, e := range ephemeral(b, room, "m.typing") {
				if asJSON(e["content"]) == `{"user_ids":[]}` {
					return true
				}
			}
			return false
		})
		// And the other way.
		res = hs2.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/typing/"+url.PathEscape(bob),
			bobTok, map[string]any{"typing": true, "timeout": 20000})
		apptest.MustStatus(t, res, http.StatusOK)
		aliceSync.until("bob typing on hs1", func(b map[string]any) bool {
			for _, e := range ephemeral(b, room, "m.typing") {
				if asJSON(e["content"]) == asJSON(map[string]any{"user_ids": []string{bob}}) {
					return true
				}
			}
			return false
		})
	})

	t.Run("receipts", func(t *testing.T) {
		res := hs2.Do(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/receipt/m.read/"+url.PathEscape(msgID),
			bobTok, map[string]any{})
		apptest.MustStatus(t, res, http.StatusOK)
		aliceSync.until("bob's read receipt on hs1", func(b map[string]any) bool {
			for _, e := range ephemeral(b, room, "m.receipt") {
				content, _ := e["content"].(map[string]any)
				ev, _ := content[msgID].(map[string]any)
				read, _ := ev["m.read"].(map[string]any)
				if _, ok := read[bob]; ok {
					return true
				}
			}
			return false
		})
	})

	t.Run("presence", func(t *testing.T) {
		res := hs1.Do(t, http.MethodPut, "/_matrix/client/v3/presence/"+url.PathEscape(alice)+"/status", aliceTok,
			map[string]any{"presence": "unavailable", "status_msg": "in a meeting"})
		apptest.MustStatus(t, res, http.StatusOK)
		bobSync.until("alice's presence on hs2", func(b map[string]any) bool {
			pres, _ := b["presence"].(map[string]any)
			events, _ := pres["events"].([]any)
			for _, e := range events {
				m, _ := e.(map[string]any)
				content, _ := m["content"].(map[string]any)
				if m["sender"] == alice && content["presence"] == "unavailable" && content["status_msg"] == "in a meeting" {
					return true
				}
			}
			return false
		})
		res = hs2.Do(t, http.MethodGet, "/_matrix/client/v3/presence/"+url.PathEscape(alice)+"/status", bobTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("presence") != "unavailable" || res.String("status_msg") != "in a meeting" {
			t.Fatalf("GET presence on hs2: %s", res.Raw)
		}
	})
}

// TestPartitionAndRestartDeliverEverythingOnce: hs2 is down while alice
// writes, then hs1 restarts with the events still queued; when hs2 is back
// every message reaches bob, in order, once.
func TestPartitionAndRestartDeliverEverythingOnce(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
	})
	hs1, hs2 := servers[0], servers[1]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	_, bobTok := hs2.Register(t, "bob", "correct horse battery")
	res := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	res = hs2.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room)+"?server_name="+string(hs1.Config.ServerName),
		bobTok, map[string]any{})
	apptest.MustStatus(t, res, http.StatusOK)

	send := func(body string) {
		res := hs1.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/"+body,
			aliceTok, map[string]any{"msgtype": "m.text", "body": body})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	send("m0")
	hs2.Stop(t)
	for _, b := range []string{"m1", "m2", "m3"} {
		send(b)
	}
	hs1.Restart(t)
	send("m4")
	// The restarted hs1 tries hs2 with what it had queued, and fails.
	deadline := time.Now().Add(20 * time.Second)
	for metric(t, hs1, `parley_federation_transaction_failures_total{outcome="retried"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the restarted hs1 never tried the stopped hs2")
		}
		time.Sleep(20 * time.Millisecond)
	}
	hs2.Restart(t)

	var got []string
	bob := &syncFollower{t: t, srv: hs2, token: bobTok}
	bob.until("every message on hs2", func(b map[string]any) bool {
		for _, e := range timeline(b, room) {
			if e["type"] == "m.room.message" {
				content, _ := e["content"].(map[string]any)
				body, _ := content["body"].(string)
				got = append(got, body)
			}
		}
		return len(got) >= 5
	})
	if asJSON(got) != asJSON([]string{"m0", "m1", "m2", "m3", "m4"}) {
		t.Fatalf("bob saw %v", got)
	}
	if n := metricReaches(t, hs1, "parley_federation_pdus_sent_total", 1); n < 1 {
		t.Fatalf("hs1 counted %v PDUs sent since its restart", n)
	}
}

// metricReaches reads a sample of a server's /metrics until it reaches
// want or 10 s have passed, and returns the last value read. The sender
// counts a transaction once its destination's answer is back, which may
// be after the destination's clients already see what it carried.
func metricReaches(t *testing.T, srv *apptest.Server, name string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := metric(t, srv, name)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample of a server's /metrics.
func metric(t *testing.T, srv *apptest.Server, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + srv.App.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestToDeviceCrossesServers: a to-device message of alice@hs1 reaches
// bob@hs2's device through the queue (m.direct_to_device).
func TestToDeviceCrossesServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")
	bobSync := &syncFollower{t: t, srv: hs2, token: bobTok}
	bobSync.until("bob's first sync", func(map[string]any) bool { return true })

	res := hs1.Do(t, http.MethodPut, "/_matrix/client/v3/sendToDevice/m.test/txn1", aliceTok, map[string]any{
		"messages": map[string]any{bob: map[string]any{"*": map[string]any{"secret": "hello"}}}})
	apptest.MustStatus(t, res, http.StatusOK)
	bobSync.until("the to-device message on hs2", func(b map[string]any) bool {
		td, _ := b["to_device"].(map[string]any)
		events, _ := td["events"].([]any)
		for _, e := range events {
			m, _ := e.(map[string]any)
			content, _ := m["content"].(map[string]any)
			if m["type"] == "m.test" && content["secret"] == "hello" {
				return true
			}
		}
		return false
	})
}

// TestCatchUpAfterALongOutage: more events than the catch-up threshold
// wait for hs2; it is sent the newest and fetches the rest itself.
func TestCatchUpAfterALongOutage(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
		c.Federation.Queue.CatchUpThreshold = 50
	})
	hs1, hs2 := servers[0], servers[1]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	_, bobTok := hs2.Register(t, "bob", "correct horse battery")
	res := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	res = hs2.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room)+"?server_name="+string(hs1.Config.ServerName),
		bobTok, map[string]any{})
	apptest.MustStatus(t, res, http.StatusOK)

	hs2.Stop(t)
	const n = 120 // at most 50 in the transaction in flight, more than 50 after it
	var last string
	for i := range n {
		res := hs1.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/c"+strconv.Itoa(i),
			aliceTok, map[string]any{"msgtype": "m.text", "body": "c" + strconv.Itoa(i)})
		apptest.MustStatus(t, res, http.StatusOK)
		last = res.String("event_id")
	}
	hs2.Restart(t)
	bob := &syncFollower{t: t, srv: hs2, token: bobTok}
	bob.until("the newest message on hs2", holdsEvent(room, last))
	if n := metricReaches(t, hs1, `parley_federation_transactions_sent_total{mode="catch_up"}`, 1); n < 1 {
		t.Fatalf("hs1 sent %v catch-up transactions", n)
	}
	// hs2 fetched the gap itself: /messages backwards from the end finds
	// a message that was in no transaction (the one in flight held at
	// most c0…c49, catch-up sent c119).
	res = hs2.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=100", bobTok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if !strings.Contains(string(res.Raw), `"body":"c100"`) {
		t.Fatalf("hs2's history lacks c100: %.600s", res.Raw)
	}
}

// TestThreeServersHearEachOther: bob@hs2 and carol@hs3 both join alice's
// room through hs1, which relays each join to the other server; from then
// on hs2 and hs3 send each other their events directly.
func TestThreeServersHearEachOther(t *testing.T) {
	servers := apptest.StartFederation(t, 3)
	hs1, hs2, hs3 := servers[0], servers[1], servers[2]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")
	carol, carolTok := hs3.Register(t, "carol", "correct horse battery")
	res := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	for _, j := range []struct {
		srv   *apptest.Server
		token string
	}{{hs2, bobTok}, {hs3, carolTok}} {
		if j.srv == hs3 {
			// Before carol joins, bob sets his presence.
			res := hs2.Do(t, http.MethodPut, "/_matrix/client/v3/presence/"+url.PathEscape(bob)+"/status", bobTok,
				map[string]any{"presence": "unavailable", "status_msg": "on a train"})
			apptest.MustStatus(t, res, http.StatusOK)
		}
		res := j.srv.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(room)+"?server_name="+string(hs1.Config.ServerName),
			j.token, map[string]any{})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	// hs2 learns of carol's join from hs1, and sends hs3 bob's presence
	// at once.
	carolSync := &syncFollower{t: t, srv: hs3, token: carolTok}
	carolSync.until("bob's presence on hs3", func(b map[string]any) bool {
		pres, _ := b["presence"].(map[string]any)
		events, _ := pres["events"].([]any)
		for _, e := range events {
			m, _ := e.(map[string]any)
			content, _ := m["content"].(map[string]any)
			if m["sender"] == bob && content["status_msg"] == "on a train" {
				return true
			}
		}
		return false
	})
	bobSync := &syncFollower{t: t, srv: hs2, token: bobTok}
	bobSync.until("carol's join on hs2", func(b map[string]any) bool {
		for _, e := range timeline(b, room) {
			if e["type"] == "m.room.member" && e["state_key"] == carol {
				return true
			}
		}
		return false
	})
	res = hs2.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/b1", bobTok,
		map[string]any{"msgtype": "m.text", "body": "hi carol"})
	apptest.MustStatus(t, res, http.StatusOK)
	fromBob := res.String("event_id")
	carolSync.until("bob's message on hs3", holdsEvent(room, fromBob))
	res = hs3.Do(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/send/m.room.message/c1", carolTok,
		map[string]any{"msgtype": "m.text", "body": "hi bob"})
	apptest.MustStatus(t, res, http.StatusOK)
	fromCarol := res.String("event_id")
	bobSync.until("carol's message on hs2", holdsEvent(room, fromCarol))
}
