package presence

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

type sentPresence struct {
	mu   sync.Mutex
	sent []syncer.PresenceEntry
}

func (p *sentPresence) SendPresence(_ context.Context, e syncer.PresenceEntry) {
	p.mu.Lock()
	p.sent = append(p.sent, e)
	p.mu.Unlock()
}

func (p *sentPresence) count(user id.UserID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.sent {
		if e.User == user {
			n++
		}
	}
	return n
}

// eventually polls cond up to a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemotePresence(t *testing.T) {
	ctx := context.Background()
	room := id.RoomID("!r:hs1")
	alice, bob, zed := id.UserID("@alice:hs1"), id.UserID("@bob:hs2"), id.UserID("@zed:hs2")

	t.Run("kept for users in a room, offline after the timeout", func(t *testing.T) {
		s, _ := newTest(t, roomsOf{alice: {room}, bob: {room}})
		s.remoteTimeout = 30 * time.Millisecond
		if err := s.SetRemotePresence(ctx, syncer.PresenceEntry{User: bob, Presence: Online, LastActiveAgo: 10,
			CurrentlyActive: true}); err != nil {
			t.Fatal(err)
		}
		got := s.PresenceBetween(0, s.PresencePos())
		if len(got) != 1 || got[0].User != bob || got[0].Presence != Online {
			t.Fatalf("presence %+v", got)
		}
		before := s.PresencePos()
		eventually(t, "bob timed out", func() bool {
			st, err := s.Status(ctx, alice, bob)
			return err == nil && st.Presence == Offline && !st.CurrentlyActive
		})
		if changed := s.PresenceBetween(before, s.PresencePos()); len(changed) != 1 || changed[0].Presence != Offline {
			t.Fatalf("the timeout is no change in the stream: %+v", changed)
		}
	})
	t.Run("a user in no room here is kept until the early expiry, and stays once joined", func(t *testing.T) {
		rooms := roomsOf{alice: {room}}
		s, _ := newTest(t, rooms)
		s.earlyRemoteTTL = time.Hour // the expiry is called by hand below
		t.Cleanup(s.Close)
		if err := s.SetRemotePresence(ctx, syncer.PresenceEntry{User: zed, Presence: Online}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRemotePresence(ctx, syncer.PresenceEntry{User: bob, Presence: Unavailable}); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		zedState, bobState, early := s.remoteUsers[zed], s.remoteUsers[bob], s.earlyRemote
		s.mu.Unlock()
		if zedState == nil || bobState == nil || early != 2 {
			t.Fatalf("early presence not kept: zed %v, bob %v, %d early", zedState, bobState, early)
		}
		rooms[zed] = []id.RoomID{room} // zed's join is stored; bob's never is
		s.earlyExpired(zed, zedState)
		s.earlyExpired(bob, bobState)
		if st, err := s.Status(ctx, alice, zed); err != nil || st.Presence != Online {
			t.Fatalf("zed, who joined in time: %+v %v", st, err)
		}
		s.mu.Lock()
		_, bobKept := s.remoteUsers[bob]
		early = s.earlyRemote
		s.mu.Unlock()
		if bobKept || early != 0 {
			t.Fatalf("bob, still in no room, kept %v; %d early", bobKept, early)
		}
	})
	t.Run("early presence is bounded, and offline is never kept early", func(t *testing.T) {
		s, _ := newTest(t, roomsOf{})
		s.earlyRemoteTTL = time.Hour
		t.Cleanup(s.Close)
		for i := range MaxEarlyRemote + 1 {
			u := id.UserID(fmt.Sprintf("@u%d:hs2", i))
			if err := s.SetRemotePresence(ctx, syncer.PresenceEntry{User: u, Presence: Online}); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.SetRemotePresence(ctx, syncer.PresenceEntry{User: "@u0:hs2", Presence: Offline})
		s.mu.Lock()
		n, early := len(s.remoteUsers), s.earlyRemote
		_, last := s.remoteUsers[id.UserID(fmt.Sprintf("@u%d:hs2", MaxEarlyRemote))]
		_, first := s.remoteUsers["@u0:hs2"]
		s.mu.Unlock()
		if n != MaxEarlyRemote-1 || early != n || last || first {
			t.Fatalf("%d kept, %d early; the one past the bound kept %v, the offline one kept %v", n, early, last, first)
		}
	})
	t.Run("a newer update cancels the timeout", func(t *testing.T) {
		s, _ := newTest(t, roomsOf{bob: {room}})
		_ = s.SetRemotePresence(ctx, syncer.PresenceEntry{User: bob, Presence: Online})
		s.mu.Lock()
		first := s.remoteUsers[bob].received
		s.mu.Unlock()
		s.now = func() time.Time { return first.Add(time.Second) }
		_ = s.SetRemotePresence(ctx, syncer.PresenceEntry{User: bob, Presence: Unavailable})
		s.remoteTimedOut(bob, first) // the first update's timer firing late
		if st, _ := s.Status(ctx, bob, bob); st.Presence != Unavailable {
			t.Fatalf("presence %q", st.Presence)
		}
		s.remoteTimedOut(bob, first.Add(time.Second)) // the current one's
		if st, _ := s.Status(ctx, bob, bob); st.Presence != Offline {
			t.Fatalf("presence %q after the timeout", st.Presence)
		}
	})
	t.Run("local users who are not offline are re-sent periodically", func(t *testing.T) {
		s, _ := newTest(t, roomsOf{alice: {room}})
		s.pingInterval = 10 * time.Millisecond
		sent := &sentPresence{}
		s.SetRemoteSender(sent)
		s.SyncStarted(alice, "")
		eventually(t, "re-sends", func() bool { return sent.count(alice) >= 3 })
	})
}
