package storage

import (
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// Every sync of every device asked the database for the device's
// one-time key counts and its to-device messages, although in a fan-out
// neither had changed (issue #9: two of the eleven round trips of each
// member's sync). These keep what the answers depend on.

type deviceKey struct {
	user   id.UserID
	device id.DeviceID
}

// maxSyncCacheDevices bounds each cache; when full it starts again empty.
const maxSyncCacheDevices = 100_000

// toDeviceEmpty knows, per device, a to-device position at or below which
// the device has no message left in the database. That only ever stays
// true — a message is stored at a new position, above every committed
// one, and only deleting removes one — whatever node stored or deleted
// it. A sync whose range ends at or below it has nothing to take and
// nothing acknowledged to delete.
type toDeviceEmpty struct {
	mu sync.Mutex
	m  map[deviceKey]int64
}

// emptyThrough reports whether the device is known to have no message at
// or below upTo.
func (c *toDeviceEmpty) emptyThrough(user id.UserID, device id.DeviceID, upTo int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[deviceKey{user, device}]
	return ok && p >= upTo
}

// learn records that the device has no message at or below pos.
func (c *toDeviceEmpty) learn(user id.UserID, device id.DeviceID, pos int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSyncCacheDevices {
		c.m = map[deviceKey]int64{}
	}
	k := deviceKey{user, device}
	c.m[k] = max(c.m[k], pos)
}

// keyCountCache keeps each device's one-time key counts and unused
// fallback key types until they change. Uploads and claims through this
// store drop the device's entry, and so does the deletion of a device
// (Keys.ForgetDevices, which the accounts store's deletions reach; the
// keys go with the device by ON DELETE CASCADE) and the creation of one
// under an id (a device deleted and created again has no keys); a read
// that overlapped a drop is not kept (gen). An entry was re-read every
// 10 s in case a change went unseen, which was a round trip of a sync of
// every member every 10 s (issue #9); now entries live keyCountsMaxAge,
// which only bounds the changes no drop on this node follows: those of
// another node sharing the database, until the bus carries them.
type keyCountCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every drop
	m   map[deviceKey]keyCounts
}

type keyCounts struct {
	counts    map[string]int
	fallbacks []string
	at        time.Time
}

const keyCountsMaxAge = 10 * time.Minute

// get returns the device's cached counts (copies), and the generation a
// read must still see to keep what it read.
func (c *keyCountCache) get(user id.UserID, device id.DeviceID) (counts map[string]int, fallbacks []string, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[deviceKey{user, device}]
	if ok && time.Since(e.at) < keyCountsMaxAge {
		out := make(map[string]int, len(e.counts))
		for k, v := range e.counts {
			out[k] = v
		}
		return out, slices.Clone(e.fallbacks), true, c.gen
	}
	return nil, nil, false, c.gen
}

// put keeps what a read that began at generation gen found, unless a drop
// happened since.
func (c *keyCountCache) put(user id.UserID, device id.DeviceID, gen uint64, counts map[string]int, fallbacks []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= maxSyncCacheDevices {
		c.m = map[deviceKey]keyCounts{}
	}
	saved := make(map[string]int, len(counts))
	for k, v := range counts {
		saved[k] = v
	}
	c.m[deviceKey{user, device}] = keyCounts{counts: saved, fallbacks: slices.Clone(fallbacks), at: time.Now()}
}

// drop forgets the device's counts; call it after the change committed.
func (c *keyCountCache) drop(user id.UserID, device id.DeviceID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, deviceKey{user, device})
}

// dropUser forgets the counts of every device of user.
func (c *keyCountCache) dropUser(user id.UserID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.m {
		if k.user == user {
			delete(c.m, k)
		}
	}
}
