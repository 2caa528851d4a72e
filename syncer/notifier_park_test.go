package syncer

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// parkAsync parks a wait and returns the channel its callback reports on.
func parkAsync(n *Notifier, user id.UserID, rooms []id.RoomID, since Token, deadline time.Time) <-chan bool {
	out := make(chan bool, 2)
	n.Park(user, rooms, since, deadline, func(woken bool) { out <- woken })
	return out
}

// TestNotifierParkEndsOnceEachWay: a parked wait's callback runs once,
// with true for a change (or one already known), with false at its
// deadline or when the notifier closes, and every ending unregisters it.
func TestNotifierParkEndsOnceEachWay(t *testing.T) {
	since := Token{}.With(StreamTimeline, 10)
	room := id.RoomID("!r:hs")
	far := time.Now().Add(time.Hour)

	n := NewNotifier(nil)
	woken := parkAsync(n, "@a:hs", []id.RoomID{room}, since, far)
	other := parkAsync(n, "@b:hs", []id.RoomID{"!other:hs"}, since, far)
	if got := n.Waiting(); got != 2 {
		t.Fatalf("%d waiting, want 2", got)
	}
	n.Notify(Change{Stream: StreamTimeline, Pos: 11, Room: room})
	if !<-woken {
		t.Fatal("a change in the room ended the wait as not woken")
	}
	if got := n.Waiting(); got != 1 {
		t.Fatalf("%d waiting after the wake-up, want 1 (the other room's)", got)
	}

	// Registered after the change: woken at once, nothing registered.
	if !<-parkAsync(n, "@c:hs", []id.RoomID{room}, since, far) {
		t.Fatal("a change already known did not wake the wait")
	}

	timedOut := parkAsync(n, "@d:hs", nil, since, time.Now().Add(time.Millisecond))
	if <-timedOut {
		t.Fatal("the deadline reported a change")
	}
	if got := n.Waiting(); got != 1 {
		t.Fatalf("%d waiting after the time-out, want 1", got)
	}

	n.Close()
	if <-other {
		t.Fatal("Close reported a change")
	}
	if got := n.Waiting(); got != 0 {
		t.Fatalf("%d waiting after Close, want 0", got)
	}
	if <-parkAsync(n, "@e:hs", nil, since, far) {
		t.Fatal("a wait parked after Close reported a change")
	}
	// Each callback ran once: nothing more arrives once all ended.
	n.Notify(Change{Stream: StreamTimeline, Pos: 12, Room: room})
	for _, ch := range []<-chan bool{woken, timedOut, other} {
		select {
		case v := <-ch:
			t.Fatalf("a callback ran twice (second value %v)", v)
		default:
		}
	}
}
