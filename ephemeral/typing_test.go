package ephemeral

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

type recordNotifier struct {
	mu      sync.Mutex
	changes []syncer.Change
	ch      chan syncer.Change
}

func (r *recordNotifier) Notify(c syncer.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
	if r.ch != nil {
		r.ch <- c
	}
}

func (r *recordNotifier) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes)
}

type joinedIn []id.RoomID

func (j joinedIn) JoinedRooms(context.Context, id.UserID) ([]id.RoomID, error) { return j, nil }

func TestTypingState(t *testing.T) {
	ctx := context.Background()
	room, other := id.RoomID("!r:hs"), id.RoomID("!o:hs")
	bob := id.UserID("@bob:hs")

	t.Run("not joined is forbidden", func(t *testing.T) {
		n := &recordNotifier{}
		ty := NewTyping(n, joinedIn{room})
		err := ty.SetTyping(ctx, bob, other, true, time.Second)
		if !errors.Is(err, mxerr.Forbidden) || n.count() != 0 {
			t.Fatalf("err %v, %d notifications", err, n.count())
		}
	})
	t.Run("a renewal moves no position; a stop does", func(t *testing.T) {
		n := &recordNotifier{}
		ty := NewTyping(n, joinedIn{room})
		start := ty.TypingPos()
		for range 3 {
			if err := ty.SetTyping(ctx, bob, room, true, 20*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		users, changed := ty.TypingIn(room)
		if !slices.Equal(users, []id.UserID{bob}) || changed != start+1 || n.count() != 1 {
			t.Fatalf("users %v changed %d (start %d), %d notifications", users, changed, start, n.count())
		}
		if err := ty.SetTyping(ctx, bob, room, false, 0); err != nil {
			t.Fatal(err)
		}
		users, changed = ty.TypingIn(room)
		if len(users) != 0 || changed != start+2 || n.count() != 2 {
			t.Fatalf("after stop: users %v changed %d, %d notifications", users, changed, n.count())
		}
	})
	t.Run("expiry removes the typer and notifies the room", func(t *testing.T) {
		n := &recordNotifier{ch: make(chan syncer.Change, 4)}
		ty := NewTyping(n, joinedIn{room})
		if err := ty.SetTyping(ctx, bob, room, true, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		<-n.ch // the start
		c := <-n.ch
		users, changed := ty.TypingIn(room)
		if c.Room != room || c.Stream != syncer.StreamTyping || len(users) != 0 || changed != c.Pos {
			t.Fatalf("change %+v, users %v changed %d", c, users, changed)
		}
	})
	t.Run("positions start past any earlier run", func(t *testing.T) {
		ty := NewTyping(&recordNotifier{}, joinedIn{})
		if ty.TypingPos() < time.Now().Add(-time.Minute).UnixMilli() {
			t.Fatalf("position %d does not start at the start time", ty.TypingPos())
		}
	})
}
