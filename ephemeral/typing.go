package ephemeral

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// MaxTypingTimeout caps how long one typing notification lasts: a client
// that vanishes stops "typing" after at most this long.
const MaxTypingTimeout = 30 * time.Second

// Notifier is told of every change so that waiting syncs wake.
type Notifier interface {
	Notify(c syncer.Change)
}

// Membership answers whether a user is joined to a room now.
type Membership interface {
	JoinedRooms(ctx context.Context, user id.UserID) ([]id.RoomID, error)
}

// Typing keeps who is typing where, in memory: typing is ephemeral by
// spec and not worth a write. Positions start at the node's start time in
// milliseconds so that a sync token of an earlier run is never ahead of a
// restarted node. A cluster shares typing over the bus later (Deliver on
// the other nodes); this type is the seam.
type Typing struct {
	notifier Notifier
	members  Membership
	// remote hears local users' changes (federation); nil until
	// SetRemoteSender.
	remote RemoteSender

	mu    sync.Mutex
	pos   int64
	rooms map[id.RoomID]*typingRoom
}

// typingRoom is the typers of one room and the position of its last change.
type typingRoom struct {
	until   map[id.UserID]time.Time
	timers  map[id.UserID]*time.Timer
	changed int64
}

// NewTyping returns an empty typing state.
func NewTyping(notifier Notifier, members Membership) *Typing {
	return &Typing{notifier: notifier, members: members, pos: time.Now().UnixMilli(),
		rooms: map[id.RoomID]*typingRoom{}}
}

// SetTyping handles PUT /rooms/{roomId}/typing/{userId}: user starts (for
// timeout, capped at MaxTypingTimeout) or stops typing in room. Only a
// joined member may.
func (t *Typing) SetTyping(ctx context.Context, user id.UserID, room id.RoomID, typing bool, timeout time.Duration) error {
	return t.set(ctx, user, room, typing, timeout, true)
}

// set records a typing change; local ones are also handed to the remote
// sender (the servers of the room hear them), remote ones are not echoed.
func (t *Typing) set(ctx context.Context, user id.UserID, room id.RoomID, typing bool, timeout time.Duration, local bool) error {
	joined, err := t.members.JoinedRooms(ctx, user)
	if err != nil {
		return err
	}
	if !slices.Contains(joined, room) {
		return mxerr.Forbidden.Msg("You are not joined to this room")
	}
	if !typing {
		t.stop(room, user, time.Time{}, local)
		return nil
	}
	if timeout <= 0 || timeout > MaxTypingTimeout {
		timeout = MaxTypingTimeout
	}
	until := time.Now().Add(timeout)
	t.mu.Lock()
	r := t.room(room)
	_, already := r.until[user]
	r.until[user] = until
	if old := r.timers[user]; old != nil {
		old.Stop()
	}
	r.timers[user] = time.AfterFunc(timeout, func() { t.stop(room, user, until, local) })
	var c syncer.Change
	if !already {
		c = t.advance(room, r)
	}
	t.mu.Unlock()
	if !already {
		t.notifier.Notify(c)
	}
	// A renewal is sent too: the other servers time typing out by
	// themselves.
	if local && t.remote != nil {
		t.remote.SendTyping(ctx, room, user, true)
	}
	return nil
}

// stop removes user from room's typers; with a non-zero until only if the
// notification that set until is still the current one (a timer that
// fired after a renewal does nothing).
func (t *Typing) stop(room id.RoomID, user id.UserID, until time.Time, local bool) {
	t.mu.Lock()
	r := t.rooms[room]
	if r == nil {
		t.mu.Unlock()
		return
	}
	cur, ok := r.until[user]
	if !ok || (!until.IsZero() && !cur.Equal(until)) {
		t.mu.Unlock()
		return
	}
	delete(r.until, user)
	if tm := r.timers[user]; tm != nil {
		tm.Stop()
		delete(r.timers, user)
	}
	c := t.advance(room, r)
	t.mu.Unlock()
	t.notifier.Notify(c)
	if local && t.remote != nil {
		t.remote.SendTyping(context.Background(), room, user, false)
	}
}

// advance gives room's change the next position; t.mu is held.
func (t *Typing) advance(room id.RoomID, r *typingRoom) syncer.Change {
	t.pos++
	r.changed = t.pos
	return syncer.Change{Stream: syncer.StreamTyping, Pos: t.pos, Room: room}
}

func (t *Typing) room(room id.RoomID) *typingRoom {
	r := t.rooms[room]
	if r == nil {
		r = &typingRoom{until: map[id.UserID]time.Time{}, timers: map[id.UserID]*time.Timer{}}
		t.rooms[room] = r
	}
	return r
}

// TypingPos is the position of the latest change anywhere.
func (t *Typing) TypingPos() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// TypingIn returns room's typers, sorted, and the position of the room's
// latest change (0 when it never changed).
func (t *Typing) TypingIn(room id.RoomID) ([]id.UserID, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[room]
	if r == nil {
		return nil, 0
	}
	users := make([]id.UserID, 0, len(r.until))
	for u := range r.until {
		users = append(users, u)
	}
	slices.Sort(users)
	return users, r.changed
}
