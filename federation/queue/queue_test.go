package queue_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEventsReachEveryServerInBatchesInOrder(t *testing.T) {
	w := newWorld(t, queue.Config{CatchUpThreshold: 1000}, hs2, hs3)
	room := w.room(id.NewUserID("bob", hs2), id.NewUserID("dan", hs3))
	other := w.room(id.NewUserID("bob", hs2)) // hs3 is not in this one
	// A backlog before the queue runs: 120 messages are three transactions.
	want := bodies("m", 120)
	w.send(room, want...)
	w.send(other, "only-hs2")
	w.start()

	r2, r3 := w.recv[hs2], w.recv[hs3]
	r2.waitFor(t, "hs2's messages", func() bool { return len(r2.bodies(t)) >= 121 })
	r3.waitFor(t, "hs3's messages", func() bool { return len(r3.bodies(t)) >= 120 })
	if got := r2.bodies(t); !slices.Equal(got, append(slices.Clone(want), "only-hs2")) {
		t.Fatalf("hs2 got %d messages, out of order or duplicated: %v", len(got), got)
	}
	if got := r3.bodies(t); !slices.Equal(got, want) {
		t.Fatalf("hs3 got %v", got)
	}
	for name, r := range w.recv {
		r.mu.Lock()
		for _, txn := range r.txns {
			if len(txn.PDUs) > queue.MaxPDUs || txn.Origin != hs1 || txn.OriginServerTS == 0 {
				t.Errorf("%s: transaction of %d PDUs from %s", name, len(txn.PDUs), txn.Origin)
			}
		}
		if r.maxInFlight != 1 {
			t.Errorf("%s: %d transactions in flight at once", name, r.maxInFlight)
		}
		r.mu.Unlock()
	}
	// The events before the remote servers joined (the room's creation)
	// are not sent; nor are their own joins.
	for _, p := range r2.pdus(t) {
		if p.Type == "m.room.create" {
			t.Fatalf("hs2 was sent the create event of a room it joined later")
		}
		if p.Type == "m.room.member" && p.Sender == "@bob:hs2.test" {
			t.Fatalf("hs2 was sent its own join")
		}
	}

	// Once running, a new message goes out at once.
	w.send(room, "live")
	r3.waitFor(t, "the live message", func() bool { return slices.Contains(r3.bodies(t), "live") })
}

func TestBackoffRetriesTheSameTransactionAndInboundRequestResets(t *testing.T) {
	w := newWorld(t, queue.Config{BackoffInitial: 10 * time.Millisecond, BackoffMax: time.Hour}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	r := w.recv[hs2]
	r.set(func(r *receiver) { r.failNext = 3 })
	w.send(room, "a")
	q := w.start()
	r.waitFor(t, "delivery after three failures", func() bool { return len(r.bodies(t)) == 1 })
	r.mu.Lock()
	attempts := slices.Clone(r.attempts)
	r.mu.Unlock()
	if len(attempts) != 4 || attempts[0] != attempts[3] || attempts[0] != attempts[1] {
		t.Fatalf("attempts %v: want four of one transaction id", attempts)
	}

	// The destination goes down; the queue backs off (the cap is an hour,
	// so after a few failures it waits far longer than this test).
	r.set(func(r *receiver) { r.down = true })
	w.send(room, "b")
	r.waitFor(t, "several failed attempts", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.attempts) >= 4+6
	})
	// It comes back and calls us: the backoff ends, "b" goes out now.
	r.set(func(r *receiver) { r.down = false })
	q.OnInboundRequest(hs2)
	r.waitFor(t, "delivery after the inbound request", func() bool { return len(r.bodies(t)) == 2 })
	if got := r.bodies(t); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRestartSendsWhatWasQueuedOnce(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	r := w.recv[hs2]
	r.set(func(r *receiver) { r.down = true })
	q := w.start()
	w.send(room, "before-1", "before-2")
	q.SendTyping(context.Background(), room, id.NewUserID("alice", hs1), true)
	q.SendReceipt(context.Background(), syncer.Receipt{Room: room, User: id.NewUserID("alice", hs1), Type: "m.read",
		EventID: "$e", TS: 5})
	r.waitFor(t, "a failed attempt", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.attempts) > 0
	})
	w.stop()
	// While the server is down, more is committed; nothing wakes a queue.
	w.send(room, "while-down")
	r.set(func(r *receiver) { r.down = false })
	w.start()
	r.waitFor(t, "everything after the restart", func() bool {
		return len(r.bodies(t)) >= 3 && len(r.edus()) >= 2
	})
	if got := r.bodies(t); !slices.Equal(got, []string{"before-1", "before-2", "while-down"}) {
		t.Fatalf("got %v", got)
	}
	var types []string
	for _, e := range r.edus() {
		types = append(types, e.Type)
	}
	slices.Sort(types)
	if !slices.Equal(types, []string{"m.receipt", "m.typing"}) {
		t.Fatalf("EDUs %v", types)
	}
	// The transaction in flight at the stop was retried under its id, so
	// the receiver's idempotency covers a send whose answer was lost.
	r.mu.Lock()
	first := r.attempts[0]
	seen := r.seen[first]
	r.mu.Unlock()
	if !seen {
		t.Fatalf("the transaction in flight at the stop (%s) was not the one sent after the restart", first)
	}
}

func TestCatchUpSendsTheNewestEventOfEachRoom(t *testing.T) {
	w := newWorld(t, queue.Config{CatchUpThreshold: 60}, hs2)
	bob := id.NewUserID("bob", hs2)
	rooms := []id.RoomID{w.room(bob), w.room(bob), w.room(bob)}
	for i, room := range rooms {
		w.send(room, bodies(string(rune('a'+i)), 40)...)
	}
	w.start()
	r := w.recv[hs2]
	r.waitFor(t, "the catch-up", func() bool { return len(r.bodies(t)) >= 3 })
	got := r.bodies(t)
	if !slices.Equal(got, []string{"a039", "b039", "c039"}) {
		t.Fatalf("catch-up sent %d messages: %v", len(got), got)
	}
	// Afterwards the destination is current: a new message goes as usual.
	w.send(rooms[0], "after")
	r.waitFor(t, "the next message", func() bool { return slices.Contains(r.bodies(t), "after") })
	if n := len(r.bodies(t)); n != 4 {
		t.Fatalf("%d messages after the catch-up", n)
	}
}

// A catch-up transaction that failed is retried as it was built, and
// still counted as catch-up when it is accepted (its mode is recorded with
// it, not recomputed from the PDUs it carries).
func TestRetriedCatchUpTransactionKeepsItsMode(t *testing.T) {
	w := newWorld(t, queue.Config{CatchUpThreshold: 60, BackoffInitial: 10 * time.Millisecond}, hs2)
	bob := id.NewUserID("bob", hs2)
	rooms := []id.RoomID{w.room(bob), w.room(bob)}
	for i, room := range rooms {
		w.send(room, bodies(string(rune('a'+i)), 40)...)
	}
	r := w.recv[hs2]
	r.set(func(r *receiver) { r.failNext = 2 })
	w.start()
	r.waitFor(t, "the catch-up after two failures", func() bool { return len(r.bodies(t)) >= 2 })
	if got := r.bodies(t); !slices.Equal(got, []string{"a039", "b039"}) {
		t.Fatalf("catch-up sent %v", got)
	}
	r.mu.Lock()
	attempts := slices.Clone(r.attempts)
	r.mu.Unlock()
	if len(attempts) != 3 || attempts[0] != attempts[2] {
		t.Fatalf("attempts %v: want three of one transaction id", attempts)
	}
	want := `
# HELP parley_federation_transactions_sent_total Outbound federation transactions accepted by their destination, by mode (normal, catch_up).
# TYPE parley_federation_transactions_sent_total counter
parley_federation_transactions_sent_total{mode="catch_up"} 1
`
	// The count follows the destination's answer, which may come back
	// after the receiver recorded the bodies.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := testutil.GatherAndCompare(w.registry, strings.NewReader(want), "parley_federation_transactions_sent_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKickedServerGetsTheKickButNothingAfter(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	bob := id.NewUserID("bob", hs2)
	room := w.room(bob)
	w.send(room, "before")
	alice := id.NewUserID("alice", hs1)
	if err := w.rooms.Kick(context.Background(), alice, room, bob, "bye"); err != nil {
		t.Fatal(err)
	}
	w.send(room, "after")
	w.start()
	r := w.recv[hs2]
	r.waitFor(t, "the kick", func() bool {
		for _, p := range r.pdus(t) {
			if p.Type == "m.room.member" && p.Content.Membership == "leave" {
				return true
			}
		}
		return false
	})
	// The kick and "after" were waiting together: had "after" been sent,
	// it would have come in the same transaction.
	if got := r.bodies(t); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("hs2 got %v", got)
	}
}

func TestEDUsAreBatchedCoalescedAndFormatted(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	bob := id.NewUserID("bob", hs2)
	room := w.room(bob)
	r := w.recv[hs2]
	r.set(func(r *receiver) { r.down = true })
	q := w.start()
	ctx := context.Background()
	alice := id.NewUserID("alice", hs1)
	// 150 to-device EDUs: two transactions.
	for i := range 150 {
		content, _ := json.Marshal(map[string]any{"message_id": i})
		if err := q.SendEDU(ctx, hs2, queue.EDUDirectToDevice, content); err != nil {
			t.Fatal(err)
		}
	}
	// Typing on then off: only the latest is sent. Presence likewise.
	q.SendTyping(ctx, room, alice, true)
	q.SendTyping(ctx, room, alice, false)
	q.SendPresence(ctx, syncer.PresenceEntry{User: alice, Presence: "online", LastActiveAgo: 10, CurrentlyActive: true})
	q.SendPresence(ctx, syncer.PresenceEntry{User: alice, Presence: "unavailable", LastActiveAgo: 20, StatusMsg: "away"})
	// Remote users' presence and private receipts never leave.
	q.SendPresence(ctx, syncer.PresenceEntry{User: bob, Presence: "online"})
	q.SendReceipt(ctx, syncer.Receipt{Room: room, User: alice, Type: "m.read.private", EventID: "$x", TS: 1})
	q.SendReceipt(ctx, syncer.Receipt{Room: room, User: alice, Type: "m.read", EventID: "$y", TS: 2, ThreadID: "main"})
	// To ourselves: nothing.
	if err := q.SendEDU(ctx, hs1, queue.EDUDirectToDevice, json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Device list updates go to the servers sharing a room with the user.
	if got, err := q.ServersSharingRoomWith(ctx, alice); err != nil || !slices.Equal(got, []id.ServerName{hs2}) {
		t.Fatalf("servers sharing a room with alice: %v, %v", got, err)
	}
	if got, err := q.ServersSharingRoomWith(ctx, id.NewUserID("nobody", hs1)); err != nil || len(got) != 0 {
		t.Fatalf("servers sharing a room with nobody: %v, %v", got, err)
	}
	r.set(func(r *receiver) { r.down = false })
	q.OnInboundRequest(hs2)
	r.waitFor(t, "the EDUs", func() bool { return len(r.edus()) >= 153 })
	r.mu.Lock()
	for _, txn := range r.txns {
		if len(txn.EDUs) > queue.MaxEDUs {
			t.Errorf("transaction of %d EDUs", len(txn.EDUs))
		}
	}
	r.mu.Unlock()
	byType := map[string][]json.RawMessage{}
	for _, e := range r.edus() {
		byType[e.Type] = append(byType[e.Type], e.Content)
	}
	if len(byType[queue.EDUDirectToDevice]) != 150 || len(byType[queue.EDUTyping]) != 1 ||
		len(byType[queue.EDUPresence]) != 1 || len(byType[queue.EDUReceipt]) != 1 {
		t.Fatalf("EDUs by type: %d to-device, %d typing, %d presence, %d receipts", len(byType[queue.EDUDirectToDevice]),
			len(byType[queue.EDUTyping]), len(byType[queue.EDUPresence]), len(byType[queue.EDUReceipt]))
	}
	checkJSON(t, byType[queue.EDUTyping][0], map[string]any{"room_id": string(room), "user_id": string(alice), "typing": false})
	checkJSON(t, byType[queue.EDUPresence][0], map[string]any{"push": []any{map[string]any{"user_id": string(alice),
		"presence": "unavailable", "last_active_ago": float64(20), "currently_active": false, "status_msg": "away"}}})
	checkJSON(t, byType[queue.EDUReceipt][0], map[string]any{string(room): map[string]any{"m.read": map[string]any{
		string(alice): map[string]any{"event_ids": []any{"$y"}, "data": map[string]any{"ts": float64(2), "thread_id": "main"}}}}})
}

func TestRefusedTransactionIsDroppedNotRetriedForever(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	r := w.recv[hs2]
	r.set(func(r *receiver) { r.status = http.StatusForbidden })
	w.send(room, "refused")
	w.start()
	r.waitFor(t, "the refusal", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.attempts) >= 1
	})
	r.set(func(r *receiver) { r.status = 0 })
	w.send(room, "accepted")
	r.waitFor(t, "the next message", func() bool { return len(r.bodies(t)) == 1 })
	if got := r.bodies(t); !slices.Equal(got, []string{"accepted"}) {
		t.Fatalf("got %v", got)
	}
}

func checkJSON(t *testing.T, raw json.RawMessage, want any) {
	t.Helper()
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("content\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestWindowsFollowAServersMembers(t *testing.T) {
	ctx := context.Background()
	alice := id.NewUserID("alice", hs1)
	bob, carol := id.NewUserID("bob", hs2), id.NewUserID("carol", hs2)

	t.Run("another joined user keeps the server in the room", func(t *testing.T) {
		w := newWorld(t, queue.Config{}, hs2)
		room := w.room(bob, carol)
		if err := w.rooms.Kick(ctx, alice, room, bob, ""); err != nil {
			t.Fatal(err)
		}
		w.send(room, "after-kick")
		w.start()
		r := w.recv[hs2]
		r.waitFor(t, "the message", func() bool { return slices.Contains(r.bodies(t), "after-kick") })
	})
	t.Run("a server that leaves and rejoins misses what came between", func(t *testing.T) {
		w := newWorld(t, queue.Config{}, hs2)
		room := w.room(bob)
		w.send(room, "first")
		if err := w.rooms.Kick(ctx, alice, room, bob, ""); err != nil {
			t.Fatal(err)
		}
		w.send(room, "between")
		w.remoteJoin(room, bob)
		w.send(room, "back")
		w.start()
		r := w.recv[hs2]
		r.waitFor(t, "the message after the rejoin", func() bool { return slices.Contains(r.bodies(t), "back") })
		if got := r.bodies(t); !slices.Equal(got, []string{"first", "back"}) {
			t.Fatalf("hs2 got %v", got)
		}
		var kicks int
		for _, p := range r.pdus(t) {
			if p.Type == "m.room.member" && p.Content.Membership == "leave" {
				kicks++
			}
		}
		if kicks != 1 {
			t.Fatalf("hs2 got %d kicks", kicks)
		}
	})
}

func TestJoiningServerGetsOurUsersPresence(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	alice := id.NewUserID("alice", hs1)
	pres := presence.New(presence.Config{Enabled: true}, syncer.NewNotifier(nil), w.rooms, slog.Default())
	t.Cleanup(pres.Close)
	msg := "writing tests"
	pres.SyncStarted(alice, "") // online: a sync is open
	if err := pres.SetPresence(alice, presence.Unavailable, &msg); err != nil {
		t.Fatal(err)
	}
	q := queue.New(w.cfg, w.store, w.tr, nil, slog.Default())
	q.SetPresenceSource(pres)
	w.q = q
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	w.room(id.NewUserID("bob", hs2))
	r := w.recv[hs2]
	r.waitFor(t, "alice's presence", func() bool {
		for _, e := range r.edus() {
			if e.Type == queue.EDUPresence {
				var c struct {
					Push []map[string]any `json:"push"`
				}
				if err := json.Unmarshal(e.Content, &c); err != nil || len(c.Push) != 1 ||
					c.Push[0]["user_id"] != string(alice) || c.Push[0]["presence"] != "unavailable" ||
					c.Push[0]["status_msg"] != msg {
					t.Fatalf("presence EDU %s", e.Content)
				}
				return true
			}
		}
		return false
	})
}

func TestTwoNodesKeepOneTransactionInFlight(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	want := bodies("n", 150)
	w.send(room, want...)
	// Two nodes on one database, both with the backlog to send.
	w.start()
	other := queue.New(w.cfg, storage.NewFedQueue(w.pool), w.tr, nil, slog.Default())
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	other.Wake(hs2)
	r := w.recv[hs2]
	r.waitFor(t, "the backlog", func() bool { return len(r.bodies(t)) >= len(want) })
	if got := r.bodies(t); !slices.Equal(got, want) {
		t.Fatalf("got %d messages, out of order or duplicated", len(got))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maxInFlight != 1 {
		t.Fatalf("%d transactions in flight at once", r.maxInFlight)
	}
	seen := map[string]bool{}
	for _, id := range r.attempts {
		if seen[id] {
			t.Fatalf("transaction %s sent twice: %v", id, r.attempts)
		}
		seen[id] = true
	}
}
