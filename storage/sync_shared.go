package storage

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/syncer"
)

// The syncs one commit wakes ask the same of the room: the member events
// of the timeline's senders before it (lazy-loaded members) and the room's
// summary. Each of them was a round trip per member (issue #9); they are
// read once here and shared.

// sharedReads runs one read per key at a time: callers that ask while it
// runs wait for it, and a result is reused for ttl. Results are shared:
// callers must not modify them.
type sharedReads[K comparable, V any] struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[K]*sharedResult[V]
}

type sharedResult[V any] struct {
	done chan struct{} // nil once the read ended
	v    V
	err  error
	at   time.Time // when the read ended
}

// sharedReadTimeout bounds a shared read, which no single caller's
// context governs.
const sharedReadTimeout = 30 * time.Second

// get returns load's result for k: a read of k under way or ended less
// than ttl ago, or a new one.
func (c *sharedReads[K, V]) get(ctx context.Context, k K, load func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]*sharedResult[V]{}
	}
	now := time.Now()
	r := c.m[k]
	if r != nil && r.done == nil && now.Sub(r.at) >= c.ttl {
		r = nil
	}
	if r == nil {
		if len(c.m) >= c.max {
			for k, r := range c.m {
				if r.done == nil && now.Sub(r.at) >= c.ttl {
					delete(c.m, k)
				}
			}
		}
		if len(c.m) >= c.max {
			c.mu.Unlock()
			return load(ctx)
		}
		r = &sharedResult[V]{done: make(chan struct{})}
		c.m[k] = r
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
		v, err := load(rctx)
		cancel()
		c.mu.Lock()
		r.v, r.err, r.at = v, err, time.Now()
		close(r.done)
		r.done = nil
		if err != nil && c.m[k] == r {
			delete(c.m, k) // the next caller tries again
		}
		c.mu.Unlock()
		return v, err
	}
	done := r.done
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	return r.v, r.err
}

// stateEntriesKey names one StateEntriesBefore read: the keys joined in
// the order asked (the senders of the same timeline, in the same order).
type stateEntriesKey struct {
	room id.RoomID
	seq  int64
	keys string
}

func newStateEntriesKey(room id.RoomID, seq int64, keys []auth.StateKey) stateEntriesKey {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k.Type)
		b.WriteByte(0)
		b.WriteString(k.StateKey)
		b.WriteByte(0)
	}
	return stateEntriesKey{room: room, seq: seq, keys: b.String()}
}

// StateEntriesBefore implements syncer.Store through a shared read. The
// state before an event is fixed once the event is stored; past the
// latest event (the current state) it is not, and is read every time.
// The map handed out is the shared one, not a copy (a copy per member
// cost ≈3.5 µs of every sync of a fan-out, issue #9): syncer.Store says
// callers only read it.
func (s *Sync) StateEntriesBefore(ctx context.Context, room id.RoomID, seq int64, keys []auth.StateKey) (rooms.State, error) {
	if seq >= currentStateSeq || len(keys) == 0 {
		return s.readStateEntriesBefore(ctx, room, seq, keys)
	}
	st, err := s.stateEntries.get(ctx, newStateEntriesKey(room, seq, keys), func(ctx context.Context) (rooms.State, error) {
		return s.readStateEntriesBefore(ctx, room, seq, keys)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// currentStateSeq: a seq at or past it asks for the current state.
const currentStateSeq = 1 << 62

// roomCounts is the part of a room's summary that is the same for every
// member: the counts, and the heroes of whom each member drops themself.
type roomCounts struct {
	joined, invited int
	members         []id.UserID // up to maxHeroes+1, in stream order
}

const maxHeroes = 5

// selectRoomCounts is selectSummary for every member at once: one hero
// more, for the member who is among them.
const selectRoomCounts = `
SELECT count(*) FILTER (WHERE m.membership = 'join'), count(*) FILTER (WHERE m.membership = 'invite'),
       ARRAY(SELECT h.user_id FROM room_memberships h
             WHERE h.room_nid = $1 AND h.membership IN ('join', 'invite')
             ORDER BY h.stream_pos LIMIT 6)
FROM room_memberships m WHERE m.room_nid = $1 AND m.membership IN ('join', 'invite')`

// summaryCache keeps each room's counts with the log position they are
// current at: they stay the answer while the log (sync_memberlog.go)
// knows of no membership change in the room past that position. The
// counts are then those of the latest position the log read, which is at
// or after the position of the sync asking.
type summaryCache struct {
	reads sharedReads[summaryKey, roomCounts]

	mu sync.Mutex
	m  map[id.RoomID]countsAt
}

type summaryKey struct {
	room id.RoomID
	at   int64
}

type countsAt struct {
	at     int64
	counts roomCounts
}

// RoomSummary implements syncer.Store.
func (s *Sync) RoomSummary(ctx context.Context, room id.RoomID, user id.UserID) (syncer.Summary, error) {
	counts, err := s.roomCounts(ctx, room)
	if err != nil {
		return syncer.Summary{}, err
	}
	sum := syncer.Summary{Joined: counts.joined, Invited: counts.invited, Heroes: make([]id.UserID, 0, maxHeroes)}
	for _, h := range counts.members {
		if h != user && len(sum.Heroes) < maxHeroes {
			sum.Heroes = append(sum.Heroes, h)
		}
	}
	return sum, nil
}

func (s *Sync) roomCounts(ctx context.Context, room id.RoomID) (roomCounts, error) {
	w, started := s.log.position()
	if !started {
		return s.readRoomCounts(ctx, room)
	}
	c := s.summaries
	c.mu.Lock()
	e, ok := c.m[room]
	c.mu.Unlock()
	if ok {
		if _, unchanged := s.log.roomMembersUnchanged(room, e.at); unchanged {
			return e.counts, nil
		}
	}
	// Read at w or later: the read begins after the log read up to w, so
	// it holds every change at or below w.
	counts, err := c.reads.get(ctx, summaryKey{room: room, at: w}, func(ctx context.Context) (roomCounts, error) {
		return s.readRoomCounts(ctx, room)
	})
	if err != nil {
		return counts, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxLogEntries {
		c.m = map[id.RoomID]countsAt{}
	}
	if cur, ok := c.m[room]; !ok || cur.at <= w {
		c.m[room] = countsAt{at: w, counts: counts}
	}
	return counts, nil
}

func (s *Sync) readRoomCounts(ctx context.Context, room id.RoomID) (roomCounts, error) {
	var counts roomCounts
	e, err := s.room(ctx, room)
	if err != nil {
		return counts, err
	}
	var members []string
	if err := s.pool.QueryRow(ctx, selectRoomCounts, e.nid).Scan(&counts.joined, &counts.invited, &members); err != nil {
		return counts, fmt.Errorf("summary of %s: %w", room, err)
	}
	counts.members = make([]id.UserID, len(members))
	for i, m := range members {
		counts.members[i] = id.UserID(m)
	}
	return counts, nil
}
