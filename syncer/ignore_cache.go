package syncer

import (
	"context"
	"sync"

	"github.com/parleyhq/parley/id"
)

// ignoreCache keeps each user's ignore list with the account data
// position it is known to be current at. The list is account data
// (m.ignored_user_list): it cannot change while the account data stream
// stays at that position, so a sync reading up to the same position
// reuses it — in a fan-out, every member's sync read it again (issue #9).
type ignoreCache struct {
	list IgnoreList

	mu sync.Mutex
	m  map[id.UserID]ignoredAt
}

type ignoredAt struct {
	pos     int64
	ignored map[id.UserID]bool
}

// maxCachedIgnoreLists bounds the cache; when full it starts again empty.
const maxCachedIgnoreLists = 50_000

// Ignored implements IgnoreList, without the cache.
func (c *ignoreCache) Ignored(ctx context.Context, user id.UserID) (map[id.UserID]bool, error) {
	return c.list.Ignored(ctx, user)
}

// at returns user's ignore list as of account data position pos or later:
// the cached one when it was read for pos, else a fresh read (which began
// after pos was read, so it holds every change up to pos).
func (c *ignoreCache) at(ctx context.Context, user id.UserID, pos int64) (map[id.UserID]bool, error) {
	c.mu.Lock()
	e, ok := c.m[user]
	c.mu.Unlock()
	if ok && e.pos == pos {
		return e.ignored, nil
	}
	ignored, err := c.list.Ignored(ctx, user)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedIgnoreLists {
		c.m = map[id.UserID]ignoredAt{}
	}
	if cur, ok := c.m[user]; !ok || cur.pos <= pos {
		c.m[user] = ignoredAt{pos: pos, ignored: ignored}
	}
	return ignored, nil
}
