package presence

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

type rec struct {
	mu sync.Mutex
	n  []syncer.Change
}

func (r *rec) Notify(c syncer.Change) { r.mu.Lock(); r.n = append(r.n, c); r.mu.Unlock() }

type roomsOf map[id.UserID][]id.RoomID

func (m roomsOf) JoinedRooms(_ context.Context, u id.UserID) ([]id.RoomID, error) { return m[u], nil }

func newTest(t *testing.T, rooms roomsOf) (*Service, *rec) {
	t.Helper()
	n := &rec{}
	s := New(Config{Enabled: true, IdleTimeout: time.Hour, OfflineTimeout: time.Hour}, n, rooms,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	return s, n
}

func TestDerived(t *testing.T) {
	s, _ := newTest(t, nil)
	now := time.Now()
	s.now = func() time.Time { return now }
	for _, c := range []struct {
		name   string
		u      userState
		want   string
		active bool
	}{
		{"syncing and active", userState{lastActive: now, syncs: 1}, Online, true},
		{"idle past the idle timeout", userState{lastActive: now.Add(-2 * time.Hour), syncs: 1}, Unavailable, false},
		{"no sync for the offline timeout", userState{lastActive: now.Add(-2 * time.Hour), syncEnded: now.Add(-2 * time.Hour)}, Offline, false},
		{"sync just ended", userState{lastActive: now.Add(-time.Minute), syncEnded: now}, Online, false},
		{"set unavailable", userState{lastActive: now, syncs: 1, set: Unavailable}, Unavailable, false},
		{"set offline", userState{lastActive: now, syncs: 1, set: Offline}, Offline, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, active := s.derived(&c.u, now)
			if got != c.want || active != c.active {
				t.Fatalf("%s active %v, want %s active %v", got, active, c.want, c.active)
			}
		})
	}
}

func TestChangesAndVisibility(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := id.UserID("@a:hs"), id.UserID("@b:hs"), id.UserID("@c:hs")
	s, n := newTest(t, roomsOf{alice: {"!r:hs"}, bob: {"!r:hs"}, carol: {"!x:hs"}})
	start := s.PresencePos()
	s.SyncStarted(bob, "")
	t.Run("a sync brings the user online and notifies their rooms", func(t *testing.T) {
		e, err := s.Status(ctx, alice, bob)
		if err != nil || e.Presence != Online || !e.CurrentlyActive {
			t.Fatalf("%+v %v", e, err)
		}
		if len(n.n) != 2 || n.n[1].Room != "!r:hs" || n.n[0].Users[0] != bob {
			t.Fatalf("changes %+v", n.n)
		}
	})
	t.Run("repeated activity moves no position", func(t *testing.T) {
		pos := s.PresencePos()
		s.Touch(bob)
		s.Touch(bob)
		if s.PresencePos() != pos || pos != start+1 {
			t.Fatalf("pos %d → %d (start %d)", pos, s.PresencePos(), start)
		}
	})
	t.Run("a stranger may not look", func(t *testing.T) {
		if _, err := s.Status(ctx, carol, bob); err == nil {
			t.Fatal("carol sees bob's presence")
		}
	})
	t.Run("status message is a change", func(t *testing.T) {
		msg := "lunch"
		if err := s.SetPresence(bob, Online, &msg); err != nil {
			t.Fatal(err)
		}
		got := s.PresenceBetween(start+1, s.PresencePos())
		if len(got) != 1 || got[0].StatusMsg != "lunch" {
			t.Fatalf("changed %+v", got)
		}
	})
	t.Run("invalid presence", func(t *testing.T) {
		if err := s.SetPresence(bob, "busy", nil); err == nil {
			t.Fatal("accepted busy")
		}
	})
}
