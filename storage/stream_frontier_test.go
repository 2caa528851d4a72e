package storage_test

import (
	"context"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestStreamFrontierWaitsForALateCommit is the ordering rule of stream
// positions without a lock (sql/0025): a send whose commit is held — its
// room row locked by another transaction after the send reserved its
// position — keeps the frontier below that position while a later send
// into another room, with a greater position, commits. That later send
// is not answered yet, and a reader that reads up to the frontier in the
// meantime and on from there afterwards reads both events: the one
// committed late is not skipped.
func TestStreamFrontierWaitsForALateCommit(t *testing.T) {
	pool := pgtest.NewPool(t)
	n := newNode(t, pool)
	ctx := context.Background()
	alice := uniqueUser(t, "late")
	v := rooms.Viewer{User: alice, Device: "D"}
	roomA, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	roomB, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	start, err := n.st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reserved, ended := make(chan []int64, 8), make(chan []int64, 8)
	n.st.ObserveReservations(func(p []int64, end bool) {
		if end {
			ended <- p
		} else {
			reserved <- p
		}
	})

	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, `SELECT 1 FROM rooms WHERE room_id = $1 FOR UPDATE`, roomA); err != nil {
		t.Fatal(err)
	}

	send := func(room id.RoomID, txn string) chan sendResult {
		out := make(chan sendResult, 1)
		go func() {
			ev, err := message(n, v, room, txn)()
			out <- sendResult{txn, ev, err}
		}()
		return out
	}
	// A reserves its position, then its statement waits for the lock.
	aDone := send(roomA, "a")
	posA := <-reserved
	bDone := send(roomB, "b")
	posB := <-reserved
	if posB[0] <= posA[0] {
		t.Fatalf("B reserved %v after A reserved %v", posB, posA)
	}
	if got := <-ended; !slices.Equal(got, posB) {
		t.Fatalf("the first reservation to end is %v, want B's %v", got, posB)
	}
	// B has committed; A is still in flight below it.
	select {
	case r := <-bDone:
		t.Fatalf("send into B answered (%v, %v) while A's position %v is in flight", r.ev, r.err, posA)
	default:
	}
	f1, err := n.st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f1 >= posA[0] {
		t.Fatalf("frontier %d passed A's position %d, still in flight", f1, posA[0])
	}
	read := func(after, upTo int64) []id.EventID {
		rows, err := pool.Query(ctx, `
SELECT e.event_id FROM events e JOIN rooms r ON r.room_nid = e.room_nid
WHERE r.room_id = ANY($1) AND e.stream_pos > $2 AND e.stream_pos <= $3 ORDER BY e.stream_pos`,
			[]string{string(roomA), string(roomB)}, after, upTo)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []id.EventID
		for rows.Next() {
			var e id.EventID
			if err := rows.Scan(&e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	seen := read(start, f1)

	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := <-aDone, <-bDone
	if a.err != nil || b.err != nil {
		t.Fatalf("sends: %v, %v", a.err, b.err)
	}
	f2, err := n.st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, read(f1, f2)...)
	if want := []id.EventID{a.ev, b.ev}; !slices.Equal(seen, want) {
		t.Fatalf("the reader read %v, want %v (A committed late, then B)", seen, want)
	}
	checkRoom(t, n.st, roomA)
	checkRoom(t, n.st, roomB)
}
