package syncer

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// waitAsync starts a Wait and returns the channel of its result.
func waitAsync(ctx context.Context, n *Notifier, user id.UserID, rooms []id.RoomID, since Token) <-chan bool {
	out := make(chan bool, 1)
	go func() { out <- n.Wait(ctx, user, rooms, since) }()
	return out
}

// waitRegistered blocks until count syncs wait; Waiting is the
// synchronisation point, so no sleep is needed.
func waitRegistered(t *testing.T, n *Notifier, count int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.Waiting() < count {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters registered, want %d", n.Waiting(), count)
		}
		// Yield to the waiting goroutines without sleeping.
		runtime.Gosched()
	}
}

func TestNotifierWakesOnlyTheConcernedSyncs(t *testing.T) {
	n := NewNotifier(nil)
	since := Token{}.With(StreamTimeline, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	inRoom := waitAsync(ctx, n, "@a:x", []id.RoomID{"!r:x", "!s:x"}, since)
	otherRoom := waitAsync(ctx, n, "@b:x", []id.RoomID{"!t:x"}, since)
	invited := waitAsync(ctx, n, "@c:x", nil, since)
	waitRegistered(t, n, 3)

	// A membership event in !r:x targeting @c:x: wakes the room's waiter and @c.
	n.Notify(Change{Stream: StreamTimeline, Pos: 11, Room: "!r:x", Users: []id.UserID{"@c:x"}})
	for name, ch := range map[string]<-chan bool{"member of the room": inRoom, "target user": invited} {
		if !<-ch {
			t.Errorf("%s: Wait returned false, want woken", name)
		}
	}
	select {
	case <-otherRoom:
		t.Fatal("a sync of another room was woken")
	default:
	}
	if got := n.Waiting(); got != 1 {
		t.Errorf("%d waiting, want 1 (the other room's)", got)
	}
	cancel()
	if <-otherRoom {
		t.Error("cancelled Wait reported a change")
	}
	if n.Waiting() != 0 {
		t.Errorf("%d still waiting after cancel", n.Waiting())
	}
}

// A change that lands between the sync's read and its Wait must not be
// lost: Wait returns at once.
func TestNotifierChangeBeforeWait(t *testing.T) {
	cases := []struct {
		name   string
		change Change
		since  Token
		want   bool
	}{
		{"room change past since", Change{Stream: StreamTimeline, Pos: 5, Room: "!r:x"}, Token{}.With(StreamTimeline, 4), true},
		{"user change past since", Change{Stream: StreamToDevice, Pos: 2, Users: []id.UserID{"@a:x"}}, Token{}.With(StreamToDevice, 1), true},
		{"room change already seen", Change{Stream: StreamTimeline, Pos: 5, Room: "!r:x"}, Token{}.With(StreamTimeline, 5), false},
		{"another room", Change{Stream: StreamTimeline, Pos: 9, Room: "!other:x"}, Token{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := NewNotifier(nil)
			n.Notify(c.change)
			ctx, cancel := context.WithCancel(context.Background())
			if !c.want {
				cancel() // the Wait must then return false, not block
			}
			got := n.Wait(ctx, "@a:x", []id.RoomID{"!r:x"}, c.since)
			cancel()
			if got != c.want {
				t.Errorf("Wait = %v, want %v", got, c.want)
			}
		})
	}
}

type recordingBus struct {
	mu      sync.Mutex
	changes []Change
}

func (b *recordingBus) Publish(c Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changes = append(b.changes, c)
}

// Local commits are published to the bus; changes delivered from the bus
// wake local syncs and are not published again (no echo between nodes).
func TestNotifierBus(t *testing.T) {
	bus := &recordingBus{}
	n := NewNotifier(bus)
	n.Notify(Change{Stream: StreamTimeline, Pos: 1, Room: "!r:x"})
	ch := waitAsync(context.Background(), n, "@a:x", []id.RoomID{"!r:x"}, Token{}.With(StreamTimeline, 1))
	waitRegistered(t, n, 1)
	n.Deliver(Change{Stream: StreamTimeline, Pos: 2, Room: "!r:x"})
	if !<-ch {
		t.Error("a remote change did not wake the local sync")
	}
	if len(bus.changes) != 1 || bus.changes[0].Pos != 1 {
		t.Errorf("bus got %+v, want only the local change", bus.changes)
	}
}

// Many waiting syncs, one change: only the room's member is woken, and the
// cost does not depend on the other waiters.
func BenchmarkNotifyAmongManyWaiters(b *testing.B) {
	n := NewNotifier(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const waiters = 10000
	for i := range waiters {
		room := id.RoomID("!r" + strconv.Itoa(i) + ":x")
		go n.Wait(ctx, id.UserID("@u"+strconv.Itoa(i)+":x"), []id.RoomID{room}, Token{})
	}
	for n.Waiting() < waiters {
		runtime.Gosched()
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n.Notify(Change{Stream: StreamTimeline, Pos: int64(i + 1), Room: "!quiet:x"})
	}
}

// Close releases every waiting sync at once, reporting no change, and
// later waits do not block.
func TestNotifierClose(t *testing.T) {
	n := NewNotifier(nil)
	byRoom := waitAsync(context.Background(), n, "@a:x", []id.RoomID{"!r:x"}, Token{})
	byUser := waitAsync(context.Background(), n, "@b:x", nil, Token{})
	waitRegistered(t, n, 2)
	n.Close()
	for name, ch := range map[string]<-chan bool{"room waiter": byRoom, "user waiter": byUser} {
		if <-ch {
			t.Errorf("%s: Wait reported a change after Close", name)
		}
	}
	if n.Wait(context.Background(), "@a:x", []id.RoomID{"!r:x"}, Token{}) {
		t.Error("Wait after Close reported a change")
	}
}
