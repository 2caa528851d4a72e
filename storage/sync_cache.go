package storage

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// timelineCache shares the timeline reads of the syncs that one commit
// wakes. Every member of a room syncing from the same position up to the
// same position asks RoomEventsBetween for the same range; the first one
// reads and parses it, the others (concurrent or within ttl) get the same
// events. A range at or below the current stream position is committed
// and no longer changes, so a result can be shared — but for a redaction
// committed after the read: a sync that read its position before that
// redaction may then show the event unredacted, as it would had it read
// the event a moment earlier; the redaction itself is in its next sync.
// Entries are the stored events only: rendering (unsigned.transaction_id
// for the sending device alone, age) stays per viewer.
type timelineCache struct {
	mu sync.Mutex
	m  map[rangeKey]*rangeRead
}

type rangeKey struct {
	room        id.RoomID
	after, upTo int64
	limit       int
}

type rangeRead struct {
	done    chan struct{}
	evs     []*rooms.StoredEvent
	limited bool
	err     error
	at      time.Time // when the read ended
}

const (
	// timelineTTL is how long a read range is reused.
	timelineTTL = 2 * time.Second
	// timelineCacheMax bounds the ranges kept: expired ones are dropped
	// when it is reached, and past it a range is read without the cache.
	timelineCacheMax = 512
	// timelineReadTimeout bounds a shared read, which no single caller's
	// context governs.
	timelineReadTimeout = 30 * time.Second
)

// get returns the range's events, reading them with load unless a read of
// the same range is under way or ended less than timelineTTL ago. The
// slice is the caller's; the events are shared and must not be modified.
func (c *timelineCache) get(ctx context.Context, k rangeKey, load func(context.Context) ([]*rooms.StoredEvent, bool, error)) ([]*rooms.StoredEvent, bool, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[rangeKey]*rangeRead{}
	}
	r := c.m[k]
	now := time.Now()
	if r != nil && r.done == nil && now.Sub(r.at) >= timelineTTL {
		r = nil
	}
	if r == nil {
		if len(c.m) >= timelineCacheMax {
			c.expire(now)
		}
		if len(c.m) >= timelineCacheMax {
			// As many ranges read within the TTL as the cache holds: this
			// one is read for its caller alone rather than grow the map.
			c.mu.Unlock()
			return load(ctx)
		}
		r = &rangeRead{done: make(chan struct{})}
		c.m[k] = r
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timelineReadTimeout)
		evs, limited, err := load(rctx)
		cancel()
		c.mu.Lock()
		r.evs, r.limited, r.err, r.at = evs, limited, err, time.Now()
		close(r.done)
		r.done = nil
		if err != nil && c.m[k] == r {
			delete(c.m, k) // the next caller tries again
		}
		c.mu.Unlock()
		return slices.Clone(evs), limited, err
	}
	done := r.done
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	return slices.Clone(r.evs), r.limited, r.err
}

// expire drops the ranges read more than timelineTTL ago; c.mu is held.
func (c *timelineCache) expire(now time.Time) {
	for k, r := range c.m {
		if r.done == nil && now.Sub(r.at) >= timelineTTL {
			delete(c.m, k)
		}
	}
}
