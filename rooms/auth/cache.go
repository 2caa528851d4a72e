package auth

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// parsed is a small, lock-free, direct-mapped cache of parsed contents
// (power levels, create events). State resolution checks thousands of
// events against the same few power levels and create events; parsing
// them once instead of per Check is most of Check's cost.
//
// An entry is found by event id and is valid only for the very same content
// bytes (same backing array and length): the entry keeps the slice, so the
// array cannot be freed and reused while the entry exists, and two
// different events that claim one id (room versions 1–2 let the sender pick
// it) never share an entry. Cached values are immutable.
var parsed parseCache

const parseCacheSlots = 1024

type parseCache struct {
	seed  maphash.Seed
	slots [parseCacheSlots]atomic.Pointer[parsedEntry]
}

type parsedEntry struct {
	eventID id.EventID
	content []byte
	version roomversion.ID
	value   any
}

func init() { parsed.seed = maphash.MakeSeed() }

func (c *parseCache) slot(eventID id.EventID) *atomic.Pointer[parsedEntry] {
	return &c.slots[maphash.String(c.seed, string(eventID))%parseCacheSlots]
}

func (c *parseCache) get(rv roomversion.Version, ev Event) (any, bool) {
	content := ev.Content()
	if len(content) == 0 {
		return nil, false
	}
	e := c.slot(ev.EventID()).Load()
	if e == nil || e.eventID != ev.EventID() || e.version != rv.ID ||
		len(e.content) != len(content) || &e.content[0] != &content[0] {
		return nil, false
	}
	return e.value, true
}

func (c *parseCache) put(rv roomversion.Version, ev Event, value any) {
	content := ev.Content()
	if len(content) == 0 {
		return
	}
	c.slot(ev.EventID()).Store(&parsedEntry{eventID: ev.EventID(), content: content, version: rv.ID, value: value})
}

// cachedCreate parses a create event through the cache.
func cachedCreate(rv roomversion.Version, ev Event) (*parsedCreate, error) {
	if v, ok := parsed.get(rv, ev); ok {
		if p, ok := v.(*parsedCreate); ok {
			return p, nil
		}
	}
	cc, err := ParseCreate(rv, ev)
	if err != nil {
		return nil, err
	}
	p := &parsedCreate{c: cc, creators: cc.Creators()}
	parsed.put(rv, ev, p)
	return p, nil
}

// cachedPowerLevels parses a power levels event of the room state
// (leniently, see parseStatePowerLevels) through the cache. The result is
// shared: callers copy it before SetCreators.
func cachedPowerLevels(rv roomversion.Version, ev Event) (*PowerLevels, error) {
	if v, ok := parsed.get(rv, ev); ok {
		if p, ok := v.(*PowerLevels); ok {
			return p, nil
		}
	}
	p, err := parseStatePowerLevels(rv, ev.Content())
	if err != nil {
		return nil, err
	}
	parsed.put(rv, ev, p)
	return p, nil
}
