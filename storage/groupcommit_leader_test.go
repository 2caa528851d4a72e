package storage_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestGroupCommitLeader: on a quiet store each send is committed by its
// own request's goroutine (no batch was running), and a batch that
// panics there fails its request without wedging the committer: the
// panic reaches the caller, nothing of it is stored, and the next send
// into the same room commits.
func TestGroupCommitLeader(t *testing.T) {
	pool := pgtest.NewPool(t)
	a := newNode(t, pool)
	ctx := context.Background()
	alice := uniqueUser(t, "lead")
	room, err := a.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	v := rooms.Viewer{User: alice, Device: "D"}
	leaders0 := a.st.GroupCommitLeaders()
	for _, txn := range []string{"l1", "l2", "l3"} {
		if _, err := message(a, v, room, txn)(); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.st.GroupCommitLeaders() - leaders0; got != 3 {
		t.Fatalf("%d of 3 sends one after another were committed by their own goroutine", got)
	}

	// A second node on the database has not cached the room, so its
	// request is built under the room's lock, inside the batch.
	b := newNode(t, pool)
	panicked := func() (v any) {
		defer func() { v = recover() }()
		_, _ = b.st.Append(ctx, rooms.AppendRequest{RoomID: room, Txn: &rooms.TxnKey{User: alice, Device: "D", TxnID: "boom"},
			Build: []rooms.BuildFunc{func(*rooms.Head) (*event.Event, error) { panic("build panicked") }}})
		return nil
	}()
	if panicked != "build panicked" {
		t.Fatalf("the batch's panic reached the caller as %v", panicked)
	}
	var stored int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM client_txns WHERE user_id = $1 AND txn_id = 'boom'`, alice).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatalf("the panicked request's transaction id was stored %d times", stored)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := b.svc.Send(sctx, v, room, "m.room.message", "after", json.RawMessage(`{"msgtype":"m.text","body":"after"}`)); err != nil {
		t.Fatalf("the send after the panicked batch: %v", err)
	}
	checkRoom(t, b.st, room)
}
