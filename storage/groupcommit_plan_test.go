package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestGroupCommitGenericPlan: the pipelined batch statement runs on its
// generic plan every time (no custom plan, planned anew per execution,
// whose planning cost more than the statement's execution), and the
// setting that asks for it does not outlive the batch's transaction: the
// pool's connections go back with plan_cache_mode as they were.
func TestGroupCommitGenericPlan(t *testing.T) {
	pool := pgtest.NewPool(t)
	n := newNode(t, pool)
	ctx := context.Background()
	alice := uniqueUser(t, "plan")
	room, err := n.svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	const sends = 8 // more than the 5 custom plans PostgreSQL tries before it may settle on the generic one
	fast0, _ := n.st.GroupCommitPaths()
	for i := range sends {
		if _, err := message(n, rooms.Viewer{User: alice, Device: "D"}, room, fmt.Sprint("p", i))(); err != nil {
			t.Fatal(err)
		}
	}
	if fast, _ := n.st.GroupCommitPaths(); fast-fast0 != sends {
		t.Fatalf("%d of %d sends took the pipelined path", fast-fast0, sends)
	}
	conns := pool.AcquireAllIdle(ctx)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	var generic, custom int64
	for _, c := range conns {
		var g, cu int64
		err := c.QueryRow(ctx, `SELECT COALESCE(sum(generic_plans), 0), COALESCE(sum(custom_plans), 0)
			FROM pg_prepared_statements WHERE statement LIKE '%AS x(nid, expect, last)%'`).Scan(&g, &cu)
		if err != nil {
			t.Fatal(err)
		}
		generic, custom = generic+g, custom+cu
		var mode string
		if err := c.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "auto" {
			t.Errorf("a pool connection has plan_cache_mode %q after the batches, want auto", mode)
		}
	}
	if generic < sends || custom != 0 {
		t.Fatalf("the batch statement ran %d times on its generic plan and %d on a custom one, want at least %d and 0", generic, custom, sends)
	}
}
