package storage_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestStreamFrontierWaitsForALateCommit is the ordering rule of stream
// positions without a lock (sql/0025): a send that has taken its stream
// position but whose commit is held (its transaction id's row is being
// inserted by another transaction, which it must wait for) keeps the
// frontier below that position while a later send into another room,
// with a greater position, commits. That later send is not answered yet,
// and a reader that reads up to the frontier in the meantime and on from
// there afterwards reads both events: the one committed late, at the
// smaller position, is not skipped.
func TestStreamFrontierWaitsForALateCommit(t *testing.T) {
	pool := pgtest.NewPool(t)
	n := newNode(t, pool)
	// Two batches at once: A's is held while B's commits.
	n.st.SetBatchesInFlight(2)
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
	ended := make(chan []int64, 8)
	n.st.ObserveReservations(func(p []int64, end bool) {
		if end {
			ended <- p
		}
	})

	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	var holder int
	if err := hold.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `INSERT INTO client_txns (user_id, device_id, txn_id, room_nid, event_id, created_ts)
VALUES ($1, 'D', 'a', 0, '$held', 0)`, alice); err != nil {
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
	// A's statement locks its room, takes its position and inserts its
	// event, then waits for hold's row of the same transaction id.
	aDone := send(roomA, "a")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`,
			holder).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the send into A never waited for the held transaction id")
		}
	}
	bDone := send(roomB, "b")
	posB := <-ended
	// B has committed; A, with a smaller position, is still in flight.
	select {
	case r := <-bDone:
		t.Fatalf("send into B answered (%v, %v) while A is in flight", r.ev, r.err)
	default:
	}
	f1, err := n.st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f1 >= posB[0] {
		t.Fatalf("frontier %d passed B's position %d while A is in flight", f1, posB[0])
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
	var posA int64
	if err := pool.QueryRow(ctx, `SELECT stream_pos FROM events WHERE event_id = $1`, a.ev).Scan(&posA); err != nil {
		t.Fatal(err)
	}
	if posA >= posB[0] || f1 >= posA {
		t.Fatalf("A at %d, B at %d, frontier %d while A was held: not a late commit of a smaller position", posA, posB[0], f1)
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
