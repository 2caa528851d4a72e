package syncer

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// An idle long-poll is the common case of a crowd of connected clients:
// its since token is the current position of every stream, because the
// client read everything and came back when its previous long-poll timed
// out. Its answer is known to be empty until something commits, so it
// skips the build (memberships, ignore list, rooms, every source) and goes
// straight to the notifier's wait; issue #9 measured 20,000 such clients
// re-polling every 30 s as hundreds of full builds a second, and each
// build grew the stack the parked request then kept.

// waitIdle is the long-poll of a sync whose since token at is the current
// position of every stream. It returns (nil, nil) when a change woke it
// (the caller then builds from at), or the answer to give on time-out.
func (s *Service) waitIdle(ctx context.Context, req Request, filter *Filter, at Token, deadline time.Time) (*Response, error) {
	joined, err := s.joinedAt(ctx, req.User, at.Pos(StreamTimeline))
	if err != nil {
		return nil, err
	}
	if time.Now().Before(deadline) {
		if s.beforeIdleWait != nil {
			s.beforeIdleWait()
		}
		// A caller that holds the wait itself (parked.go) gets it here.
		if s.park(ctx, req, filter, at, joined, deadline) {
			return nil, ErrParked
		}
		// A commit after the positions were read has a position past at:
		// the notifier's record of it, or its wake-up, ends the wait.
		wctx, cancel := context.WithDeadline(ctx, deadline)
		woken := s.notifier.Wait(wctx, req.User, joined, at)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if woken {
			return nil, nil
		}
	}
	return s.idleResponse(ctx, req, filter, at, joined)
}

// idleResponse is the answer of a sync from at to at: what a build of the
// empty range gives. No room can appear in it (no membership change, no
// event in the range), so only the sources are asked, each for its empty
// range; they add what every answer carries whatever the range — the
// device's one-time key counts, which change without a stream position
// when another user claims a key, so they are read now, not when the wait
// began.
func (s *Service) idleResponse(ctx context.Context, req Request, filter *Filter, at Token, joined []id.RoomID) (*Response, error) {
	b := &builder{s: s, req: req, filter: filter, since: at, pos: at.Pos(StreamTimeline), at: at, joined: joined}
	resp := newResponse()
	resp.NextBatch = at.String()
	return b.finish(ctx, resp)
}

// joinedAt returns the rooms user is joined to at the timeline position
// pos: from the last build for user when it read them at exactly pos,
// else from the store.
func (s *Service) joinedAt(ctx context.Context, user id.UserID, pos int64) ([]id.RoomID, error) {
	if rooms, ok := s.joinedCache.get(user, pos); ok {
		return rooms, nil
	}
	current, err := s.store.Memberships(ctx, user, pos)
	if err != nil {
		return nil, err
	}
	var joined []id.RoomID
	for _, c := range current {
		if c.Membership == "join" {
			joined = append(joined, c.RoomID)
		}
	}
	s.joinedCache.put(user, pos, joined)
	return joined, nil
}

// joinedCacheSize bounds the joined-rooms cache: one entry per user who
// synced recently. Past it an arbitrary entry makes room; a miss costs
// one query.
const joinedCacheSize = 100_000

// joinedCache remembers, per user, the rooms they were joined to at one
// timeline position — the latest a build read. Memberships at a committed
// position never change, so an entry is exact for its position and
// useless for any other: no invalidation.
type joinedCache struct {
	mu sync.Mutex
	m  map[id.UserID]joinedRooms
}

type joinedRooms struct {
	pos   int64
	rooms []id.RoomID
}

func (c *joinedCache) get(user id.UserID, pos int64) ([]id.RoomID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user]
	if !ok || e.pos != pos {
		return nil, false
	}
	return e.rooms, true
}

// put records rooms as user's joined rooms at pos, unless an entry of a
// later position is there (a slower build of another device).
func (c *joinedCache) put(user id.UserID, pos int64, rooms []id.RoomID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[id.UserID]joinedRooms{}
	}
	if e, ok := c.m[user]; ok && e.pos > pos {
		return
	}
	if _, ok := c.m[user]; !ok && len(c.m) >= joinedCacheSize {
		for u := range c.m {
			delete(c.m, u)
			break
		}
	}
	c.m[user] = joinedRooms{pos: pos, rooms: rooms}
}
