package syncer

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// sharedRead lets concurrent callers share one read of a value that only
// grows with time (the streams' positions), without ever answering a
// caller with a read that began before it called: a caller joins the
// read that has not started yet, or starts one; while a read is under
// way, the callers that arrive wait for the next one, which starts when
// it ends. So N syncs woken by one commit make about two reads, not N,
// and each still sees every commit that preceded its call.
type sharedRead struct {
	mu      sync.Mutex
	running bool
	next    *flight // the read the next callers join; it starts after running ends
}

type flight struct {
	done    chan struct{}
	callers int // joined so far (tests watch it)
	t       Token
	err     error
}

// readTimeout bounds a shared read: no caller's context governs it (one
// caller giving up must not fail the others).
const readTimeout = 30 * time.Second

func (r *sharedRead) read(ctx context.Context, read func(context.Context) (Token, error)) (Token, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &flight{done: make(chan struct{})}
	}
	f := r.next
	f.callers++
	if !r.running {
		r.running, r.next = true, nil
		r.mu.Unlock()
		go r.run(ctx, f, read)
	} else {
		r.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.t, f.err
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// run performs f's read, then the read that callers queued meanwhile, if
// any.
func (r *sharedRead) run(ctx context.Context, f *flight, read func(context.Context) (Token, error)) {
	for f != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
		f.t, f.err = read(rctx)
		cancel()
		close(f.done)
		r.mu.Lock()
		f = r.next
		r.next = nil
		if f == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}

// filterCache keeps parsed stored filters by (user, filter id). A stored
// filter never changes (an upload of another definition gets another
// id), so an entry is never stale; every sync that names a filter by id
// otherwise read and decoded it again.
type filterCache struct {
	mu sync.Mutex
	m  map[filterKey]*Filter
}

type filterKey struct {
	user id.UserID
	id   string
}

// maxCachedFilters bounds the cache; when full it starts again empty.
const maxCachedFilters = 10000

func (c *filterCache) get(user id.UserID, filterID string) *Filter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[filterKey{user, filterID}]
}

func (c *filterCache) put(user id.UserID, filterID string, f *Filter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedFilters {
		c.m = map[filterKey]*Filter{}
	}
	c.m[filterKey{user, filterID}] = f
}
