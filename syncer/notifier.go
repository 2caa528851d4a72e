package syncer

import (
	"context"
	"sync"

	"github.com/parleyhq/parley/id"
)

// Change is one committed change the notifier learns of: a position in a
// stream, the room it touched (if any) and the users it concerns beyond
// that room's members — the target of a membership event (an invite
// reaches a user who is not in the room yet), the recipient of a
// to-device message.
type Change struct {
	Stream Stream
	Pos    int64
	Room   id.RoomID
	Users  []id.UserID
}

// Bus carries changes between the nodes of a cluster: a node publishes
// its own commits, and every other node hands what it receives to its
// notifier's Deliver. A single node has none. The NATS bus implements it.
type Bus interface {
	Publish(c Change)
}

// Notifier wakes waiting syncs (long-polls, WebSocket streams) the moment
// a change relevant to them commits. Waiters are indexed by room and by
// user, so a change wakes only the syncs of that room's members and of
// the users it names: no scan over every waiting sync, no polling.
//
// It also remembers, per room and per user, the latest position that
// touched it, so that a sync registering after a change it has not read
// yet returns at once instead of missing the wake-up.
type Notifier struct {
	bus Bus

	mu    sync.Mutex
	rooms map[id.RoomID]*watch
	users map[id.UserID]*watch
	// waiting counts the registered waiters.
	waiting int
	// closed: the node is shutting down; Wait returns at once.
	closed bool
}

// watch is the notifier's record of one room or user.
type watch struct {
	latest  Token // latest position per stream that touched it
	waiters map[*waiter]struct{}
}

// waiter is one waiting sync; woke is closed once, when it must return.
// A parked waiter (notifier_park.go) has onWake instead, run once under
// n.mu in woke's place.
type waiter struct {
	woke   chan struct{}
	closed bool
	onWake func()
}

// NewNotifier returns a notifier; bus may be nil (a single node).
func NewNotifier(bus Bus) *Notifier {
	return &Notifier{bus: bus, rooms: map[id.RoomID]*watch{}, users: map[id.UserID]*watch{}}
}

// Notify records a change committed on this node, wakes the syncs it
// concerns and publishes it to the other nodes. Call it after the commit,
// never before: a woken sync reads the database.
func (n *Notifier) Notify(c Change) {
	n.Deliver(c)
	if n.bus != nil {
		n.bus.Publish(c)
	}
}

// Deliver records a change without publishing it: the entry point of
// changes that other nodes committed.
func (n *Notifier) Deliver(c Change) {
	if c.Stream < 0 || c.Stream >= numStreams {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.Room != "" {
		n.touch(watchOf(n.rooms, c.Room), c)
	}
	for _, u := range c.Users {
		n.touch(watchOf(n.users, u), c)
	}
}

// touch advances w and wakes its waiters; n.mu is held.
func (n *Notifier) touch(w *watch, c Change) {
	if c.Pos > w.latest.pos[c.Stream] {
		w.latest.pos[c.Stream] = c.Pos
	}
	for wt := range w.waiters {
		wt.wake()
	}
}

func (wt *waiter) wake() {
	if !wt.closed {
		wt.closed = true
		if wt.onWake != nil {
			wt.onWake()
			return
		}
		close(wt.woke)
	}
}

func watchOf[K comparable](m map[K]*watch, k K) *watch {
	w := m[k]
	if w == nil {
		w = &watch{}
		m[k] = w
	}
	return w
}

// Wait blocks until a change past since touches user or one of rooms, or
// ctx ends. It returns true when woken by a change (including one that
// happened before the call but after since), false when ctx ended first.
func (n *Notifier) Wait(ctx context.Context, user id.UserID, rooms []id.RoomID, since Token) bool {
	wt := &waiter{woke: make(chan struct{})}
	n.mu.Lock()
	watches, outcome := n.register(wt, user, rooms, since)
	n.mu.Unlock()
	switch outcome {
	case waitClosed:
		return false
	case waitChanged:
		return true
	}

	woken := false
	select {
	case <-wt.woke:
		woken = true
	case <-ctx.Done():
	}

	n.mu.Lock()
	for _, w := range watches {
		delete(w.waiters, wt)
	}
	woken = (woken || wt.closed) && !n.closed
	n.waiting--
	n.mu.Unlock()
	return woken
}

// waitOutcome is what register found.
type waitOutcome int

const (
	waitListed  waitOutcome = iota
	waitClosed              // the notifier is closed: nothing was registered
	waitChanged             // a change past since is known: nothing was registered
)

// register adds wt to the watches of user and rooms unless the notifier
// is closed or one of them has a change past since; n.mu is held.
func (n *Notifier) register(wt *waiter, user id.UserID, rooms []id.RoomID, since Token) ([]*watch, waitOutcome) {
	if n.closed {
		return nil, waitClosed
	}
	watches := make([]*watch, 0, len(rooms)+1)
	watches = append(watches, watchOf(n.users, user))
	for _, r := range rooms {
		watches = append(watches, watchOf(n.rooms, r))
	}
	for _, w := range watches {
		if w.latest.After(since) {
			return nil, waitChanged
		}
	}
	for _, w := range watches {
		if w.waiters == nil {
			w.waiters = map[*waiter]struct{}{}
		}
		w.waiters[wt] = struct{}{}
	}
	n.waiting++
	return watches, waitListed
}

// Waiting is the number of syncs waiting now (a gauge for metrics and
// tests).
func (n *Notifier) Waiting() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.waiting
}

// Close ends every wait, now and later, without a change: waiting syncs
// answer at once with what they have, so that a shutting-down node does
// not hold its long-polls until the shutdown timeout.
func (n *Notifier) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for _, w := range n.rooms {
		for wt := range w.waiters {
			wt.wake()
		}
	}
	for _, w := range n.users {
		for wt := range w.waiters {
			wt.wake()
		}
	}
}
