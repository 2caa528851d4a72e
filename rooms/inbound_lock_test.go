package rooms

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// TestRoomLockIsFirstComeFirstServed: waiters get a room in the order they
// asked; other rooms are not held up; a waiter whose context ends leaves
// the queue.
func TestRoomLockIsFirstComeFirstServed(t *testing.T) {
	in := &Inbound{locks: map[id.RoomID]*roomLock{}}
	ctx := context.Background()
	unlock, err := in.lockRoom(ctx, "!a:x")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := in.lockRoom(ctx, "!a:x")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			u()
		}()
		// Wait until goroutine i is queued before starting the next.
		for deadline := time.Now().Add(5 * time.Second); ; {
			in.mu.Lock()
			n := len(in.locks["!a:x"].waiters)
			in.mu.Unlock()
			if n == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("waiter not queued")
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Another room is free meanwhile.
	other, err := in.lockRoom(ctx, "!b:x")
	if err != nil {
		t.Fatal(err)
	}
	other()
	// A waiter that gives up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := in.lockRoom(cctx, "!a:x"); err == nil {
		t.Fatal("a cancelled waiter got the lock")
	}
	unlock()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("served in order %v, want 0 1 2 3 4", order)
		}
	}
	if len(in.locks) != 0 {
		t.Fatalf("%d room locks left behind", len(in.locks))
	}
}
