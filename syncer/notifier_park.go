package syncer

import (
	"time"

	"github.com/parleyhq/parley/id"
)

// Park is Wait without a goroutine: a caller that holds tens of thousands
// of idle long-polls (issue #9) registers a callback and a timer instead of
// blocking one goroutine per wait. fn runs exactly once: with true when a
// change past since touches user or one of rooms (including one already
// known), with false at deadline or when the notifier closes. fn must
// return at once and must not call the notifier: a change runs it under
// the notifier's lock, so that a change that ends thousands of waits
// starts no goroutine per wait; it hands the answer to a worker.
func (n *Notifier) Park(user id.UserID, rooms []id.RoomID, since Token, deadline time.Time, fn func(woken bool)) {
	wt := &waiter{}
	n.mu.Lock()
	watches, outcome := n.register(wt, user, rooms, since)
	if outcome != waitListed {
		n.mu.Unlock()
		fn(outcome == waitChanged)
		return
	}
	// leave unregisters wt; n.mu is held. wt.closed is set by whoever
	// ends the wait first, so only one of the wake-up and the timer
	// calls fn.
	leave := func() {
		for _, w := range watches {
			delete(w.waiters, wt)
		}
		n.waiting--
	}
	timer := time.AfterFunc(time.Until(deadline), func() {
		n.mu.Lock()
		if wt.closed {
			n.mu.Unlock()
			return
		}
		wt.closed = true
		leave()
		n.mu.Unlock()
		fn(false)
	})
	// Run by wake under n.mu: a change, or Close (then n.closed is set
	// and the wait ends without one, as Wait's does).
	wt.onWake = func() {
		timer.Stop()
		leave()
		fn(!n.closed)
	}
	n.mu.Unlock()
}
