package presence

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// TestSyncKeepsTimerThatFiresInTime: a user online who syncs again only
// moves the next change later, so the armed timer stays (it fires early
// and re-reads); a change that is due sooner than it fires replaces it.
func TestSyncKeepsTimerThatFiresInTime(t *testing.T) {
	n := &rec{}
	s := New(Config{Enabled: true, IdleTimeout: time.Hour, OfflineTimeout: 10 * time.Second}, n, roomsOf{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.Close)
	now := time.Now()
	s.now = func() time.Time { return now }
	bob := id.UserID("@b:hs")
	timer := func() (*time.Timer, time.Time) {
		s.mu.Lock()
		defer s.mu.Unlock()
		u := s.users[bob]
		return u.timer, u.timerAt
	}

	s.SyncStarted(bob, "")
	first, at := timer()
	if first == nil || !at.Equal(now.Add(time.Minute)) {
		t.Fatalf("after the first sync: timer %v at %v, want one at %v", first, at, now.Add(time.Minute))
	}
	now = now.Add(time.Second)
	s.SyncStarted(bob, "")
	s.SyncEnded(bob)
	s.Touch(bob)
	if got, gotAt := timer(); got != first || !gotAt.Equal(at) {
		t.Errorf("a sync of a user online replaced the timer (at %v → %v)", at, gotAt)
	}
	changes := len(n.n)

	// The last sync ends: offline is due in 10 s, before the timer fires.
	now = now.Add(time.Second)
	s.SyncEnded(bob)
	if got, gotAt := timer(); got == first || !gotAt.Equal(now.Add(10*time.Second)) {
		t.Errorf("last sync ended: timer at %v, want a new one at %v", gotAt, now.Add(10*time.Second))
	}
	if len(n.n) != changes {
		t.Errorf("no presence change yet, %d notifications", len(n.n)-changes)
	}

	// The timer fires (called here, at the time it was due): offline.
	now = now.Add(10 * time.Second)
	s.mu.Lock()
	u := s.users[bob]
	u.timer.Stop()
	u.timer = nil
	s.recheckLocked(bob, u, now, false, true)
	s.mu.Lock()
	published, armed := u.published, u.timer != nil
	s.mu.Unlock()
	if published != Offline || armed {
		t.Errorf("after the offline timeout: %s, timer armed %v; want offline and none", published, armed)
	}
}
