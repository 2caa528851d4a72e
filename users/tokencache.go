package users

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// tokenCache keeps recent access token lookups in memory so that most
// requests do not query Postgres. It is bounded (an arbitrary entry is
// evicted when full) and entries expire after a TTL.
//
// Logout, device deletion, password change and deactivation invalidate the
// entries of this node at once. In a cluster the other nodes keep serving a
// revoked token until their entry's TTL runs out; the multi-node work must
// publish revocations on the bus (user id, device ids) and call invalidate
// on every node.
type tokenCache struct {
	mu      sync.Mutex
	size    int
	ttl     time.Duration
	entries map[TokenHash]cacheEntry
	byUser  map[id.UserID]map[TokenHash]struct{}
}

type cacheEntry struct {
	info   AccessTokenInfo
	expiry time.Time
}

func newTokenCache(size int, ttl time.Duration) *tokenCache {
	return &tokenCache{size: size, ttl: ttl, entries: map[TokenHash]cacheEntry{}, byUser: map[id.UserID]map[TokenHash]struct{}{}}
}

func (c *tokenCache) get(h TokenHash, now time.Time) (AccessTokenInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if !ok {
		return AccessTokenInfo{}, false
	}
	if now.After(e.expiry) {
		c.removeLocked(h, e.info.UserID)
		return AccessTokenInfo{}, false
	}
	return e.info, true
}

func (c *tokenCache) put(h TokenHash, info AccessTokenInfo, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.size {
		for victim, e := range c.entries { // map order is random enough
			c.removeLocked(victim, e.info.UserID)
			break
		}
	}
	c.entries[h] = cacheEntry{info: info, expiry: now.Add(c.ttl)}
	set := c.byUser[info.UserID]
	if set == nil {
		set = map[TokenHash]struct{}{}
		c.byUser[info.UserID] = set
	}
	set[h] = struct{}{}
}

func (c *tokenCache) removeLocked(h TokenHash, user id.UserID) {
	delete(c.entries, h)
	if set := c.byUser[user]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(c.byUser, user)
		}
	}
}

// invalidate drops the cached tokens of user; with devices given, only
// those of these devices.
func (c *tokenCache) invalidate(user id.UserID, devices ...id.DeviceID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h := range c.byUser[user] {
		e := c.entries[h]
		if len(devices) == 0 || containsDevice(devices, e.info.DeviceID) {
			c.removeLocked(h, user)
		}
	}
}

func containsDevice(list []id.DeviceID, d id.DeviceID) bool {
	for _, x := range list {
		if x == d {
			return true
		}
	}
	return false
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
