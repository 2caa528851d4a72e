package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// node is one Parley node's rooms store and service; several nodes may
// share one database.
type node struct {
	svc *rooms.Service
	st  *storage.Rooms
}

func newNode(t *testing.T, pool *pgxpool.Pool) node {
	t.Helper()
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	st := storage.NewRooms(pool)
	return node{svc: rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default()), st: st}
}

// sendResult is what one queued send returned.
type sendResult struct {
	name string
	ev   id.EventID
	err  error
}

// inOneBatch pauses n's committer, starts every send, waits until all of
// them are queued, and lets the committer take them as one batch.
func inOneBatch(t *testing.T, n node, sends map[string]func() (id.EventID, error)) map[string]sendResult {
	t.Helper()
	resume := n.st.PauseGroupCommit()
	out := make(chan sendResult, len(sends))
	var wg sync.WaitGroup
	for name, send := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := send()
			out <- sendResult{name, ev, err}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.st.QueuedGroup() < len(sends) {
		if time.Now().After(deadline) {
			resume()
			t.Fatalf("%d of %d sends queued", n.st.QueuedGroup(), len(sends))
		}
		time.Sleep(time.Millisecond)
	}
	resume()
	wg.Wait()
	close(out)
	res := map[string]sendResult{}
	for r := range out {
		res[r.name] = r
	}
	return res
}

func message(n node, v rooms.Viewer, room id.RoomID, txn string) func() (id.EventID, error) {
	return func() (id.EventID, error) {
		return n.svc.Send(context.Background(), v, room, "m.room.message", txn,
			json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, txn)))
	}
}

// checkRoom asserts that room's history is a chain: gap-free seqs, each
// event naming the previous one, stream positions rising with seq, none
// left at 0 or beyond the current position.
func checkRoom(t *testing.T, st *storage.Rooms, room id.RoomID) []*rooms.StoredEvent {
	t.Helper()
	ctx := context.Background()
	evs, err := st.Timeline(ctx, room, 0, rooms.Forward, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d of %s has seq %d", i, room, e.Seq)
		}
		if e.StreamPos <= 0 || e.StreamPos > cur {
			t.Fatalf("seq %d of %s at stream position %d (current %d)", e.Seq, room, e.StreamPos, cur)
		}
		if i > 0 {
			if !slices.Contains(e.Event.PrevEventIDs(), evs[i-1].Event.EventID()) {
				t.Fatalf("seq %d of %s does not follow seq %d", e.Seq, room, e.Seq-1)
			}
			if e.StreamPos <= evs[i-1].StreamPos {
				t.Fatalf("seq %d of %s at position %d, not after seq %d at %d", e.Seq, room, e.StreamPos, e.Seq-1, evs[i-1].StreamPos)
			}
		}
	}
	return evs
}

// TestGroupCommitPipelinedBatch: sends into several rooms, several per
// room, in one batch are committed by the pipelined statement, chained
// per room, with distinct positions.
func TestGroupCommitPipelinedBatch(t *testing.T) {
	n := newNode(t, pgtest.NewPool(t))
	ctx := context.Background()
	alice := uniqueUser(t, "pipe")
	var roomIDs []id.RoomID
	for range 3 {
		room, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		roomIDs = append(roomIDs, room)
	}
	sends := map[string]func() (id.EventID, error){}
	for i, room := range roomIDs {
		for k := range 4 {
			name := fmt.Sprintf("r%d-%d", i, k)
			sends[name] = message(n, rooms.Viewer{User: alice, Device: "D"}, room, name)
		}
	}
	fast0, _ := n.st.GroupCommitPaths()
	res := inOneBatch(t, n, sends)
	for name, r := range res {
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
	}
	if fast, _ := n.st.GroupCommitPaths(); fast-fast0 != int64(len(sends)) {
		t.Fatalf("%d of %d sends took the pipelined path", fast-fast0, len(sends))
	}
	for _, room := range roomIDs {
		checkRoom(t, n.st, room)
	}
}

// TestGroupCommitDuplicateTxnInOneBatch: a client's retries of one
// transaction id that land in the same batch as the first attempt get its
// event, and only one event is stored.
func TestGroupCommitDuplicateTxnInOneBatch(t *testing.T) {
	pool := pgtest.NewPool(t)
	n := newNode(t, pool)
	ctx := context.Background()
	alice := uniqueUser(t, "dup")
	room, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	v := rooms.Viewer{User: alice, Device: "D"}
	sends := map[string]func() (id.EventID, error){
		"other1": message(n, v, room, "other1"),
		"other2": message(n, v, room, "other2"),
	}
	for i := range 4 {
		sends[fmt.Sprint("retry", i)] = message(n, v, room, "same")
	}
	res := inOneBatch(t, n, sends)
	var first id.EventID
	for name, r := range res {
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if name[:5] == "retry" {
			if first == "" {
				first = r.ev
			} else if r.ev != first {
				t.Fatalf("retries of one transaction id got %s and %s", first, r.ev)
			}
		}
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE txn_id = 'same' AND sender = $1`, alice).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		t.Fatalf("%d events stored for one transaction id", stored)
	}
	evs := checkRoom(t, n.st, room)
	if !slices.ContainsFunc(evs, func(e *rooms.StoredEvent) bool { return e.Event.EventID() == first }) {
		t.Fatalf("the deduplicated event %s is not in the room", first)
	}
}

// TestGroupCommitStaleHeadRetried: a node whose cached head of a room is
// stale (another node sent into it) builds on the stale head; the
// pipelined statement refuses that room only, its sends are built again
// on the room's real head, and the other rooms of the batch commit.
func TestGroupCommitStaleHeadRetried(t *testing.T) {
	pool := pgtest.NewPool(t)
	a, b := newNode(t, pool), newNode(t, pool)
	ctx := context.Background()
	alice := uniqueUser(t, "stale")
	v := rooms.Viewer{User: alice, Device: "D"}
	stale, err := a.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := a.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := message(a, v, stale, "a0")(); err != nil {
		t.Fatal(err)
	}
	other, err := message(b, v, stale, "b0")()
	if err != nil {
		t.Fatal(err)
	}
	fast0, locked0 := a.st.GroupCommitPaths()
	res := inOneBatch(t, a, map[string]func() (id.EventID, error){
		"stale1": message(a, v, stale, "s1"),
		"stale2": message(a, v, stale, "s2"),
		"fresh1": message(a, v, fresh, "f1"),
		"fresh2": message(a, v, fresh, "f2"),
	})
	for name, r := range res {
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
	}
	fast, locked := a.st.GroupCommitPaths()
	if fast-fast0 != 2 || locked-locked0 != 2 {
		t.Fatalf("pipelined %d, locked %d; want the fresh room's 2 pipelined and the stale room's 2 locked", fast-fast0, locked-locked0)
	}
	evs := checkRoom(t, a.st, stale)
	var names []string
	for _, e := range evs {
		if e.TxnID != "" {
			names = append(names, e.TxnID)
		}
	}
	if len(names) != 4 || names[0] != "a0" || names[1] != "b0" {
		t.Fatalf("stale room's sends in order %v", names)
	}
	if !slices.Contains(evs[len(evs)-2].Event.PrevEventIDs(), other) {
		t.Fatal("the first send after the other node's is not built on it")
	}
	checkRoom(t, a.st, fresh)
}

// TestGroupCommitBatchMixingRoomsAndFailures: one batch holds chained
// sends into two rooms, a state event, a stranger's send (auth fails on
// the cached head and again under the lock) and a send into an unknown
// room. The failures fail alone with their own errors; everything else
// commits, chained, with positions in room order.
func TestGroupCommitBatchMixingRoomsAndFailures(t *testing.T) {
	n := newNode(t, pgtest.NewPool(t))
	ctx := context.Background()
	alice := uniqueUser(t, "mix")
	stranger := rooms.Viewer{User: uniqueUser(t, "mix_stranger"), Device: "S"}
	v := rooms.Viewer{User: alice, Device: "D"}
	r1, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	unknown := id.RoomID("!nowhere:" + string(roomServer))
	res := inOneBatch(t, n, map[string]func() (id.EventID, error){
		"r1a":       message(n, v, r1, "r1a"),
		"r1b":       message(n, v, r1, "r1b"),
		"r1c":       message(n, v, r1, "r1c"),
		"r2a":       message(n, v, r2, "r2a"),
		"r2b":       message(n, v, r2, "r2b"),
		"forbidden": message(n, stranger, r1, "x"),
		"unknown":   message(n, v, unknown, "u"),
		"state": func() (id.EventID, error) {
			return n.svc.SetState(ctx, alice, r2, "m.room.topic", "", json.RawMessage(`{"topic":"mixed"}`))
		},
	})
	for name, r := range res {
		switch name {
		case "forbidden":
			if !errors.Is(r.err, mxerr.Forbidden) {
				t.Fatalf("stranger's send: %v, want M_FORBIDDEN", r.err)
			}
		case "unknown":
			if r.err == nil {
				t.Fatal("a send into an unknown room succeeded")
			}
		default:
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
		}
	}
	if evs := checkRoom(t, n.st, r1); evs[len(evs)-1].Seq-evs[0].Seq < 2 {
		t.Fatal("room 1 has fewer events than sent")
	}
	evs := checkRoom(t, n.st, r2)
	var topic bool
	for _, e := range evs {
		topic = topic || e.Event.Type() == "m.room.topic" && e.Event.Sender() == alice && e.Seq > 3
	}
	if !topic {
		t.Fatal("the state event of the batch is not stored")
	}
	h, err := n.st.Head(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != evs[len(evs)-1].Seq || h.State.Get("m.room.topic", "") == nil {
		t.Fatalf("room 2's cached head at seq %d (stored %d), topic %v", h.Seq, evs[len(evs)-1].Seq, h.State.Get("m.room.topic", ""))
	}
}
