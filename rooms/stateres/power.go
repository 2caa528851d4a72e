package stateres

import (
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// isPowerEvent reports whether n is a power event (spec "Power events"):
// power levels, join rules, or a membership leave or ban sent by someone other
// than its target — events that may take abilities away.
func (g *graph) isPowerEvent(n int32) bool {
	nd := &g.nodes[n]
	if !nd.isState {
		return false
	}
	switch nd.key.Type {
	case auth.TypePowerLevels, auth.TypeJoinRules:
		return true // whatever the state key: the definition names only the type
	case auth.TypeMember:
		if string(nd.ev.Sender()) == nd.key.StateKey {
			return false
		}
		m, err := auth.ParseMember(nd.ev.Content())
		return err == nil && (m.Membership == auth.Leave || m.Membership == auth.Ban)
	}
	return false
}

// powerCache computes each event's sender power level once, and parses each
// (power levels, create) pair once.
type powerCache struct {
	rv     roomversion.Version
	g      *graph
	create int32 // the room's create event for v12, -1 otherwise
	levels map[[2]int32]*auth.PowerLevels
	sender map[int32]int64
}

func newPowerCache(rv roomversion.Version, g *graph, create int32) *powerCache {
	return &powerCache{rv: rv, g: g, create: create,
		levels: make(map[[2]int32]*auth.PowerLevels), sender: make(map[int32]int64)}
}

// senderPower is the power level of n's sender "when looking at [its]
// auth_events" (spec "Reverse topological power ordering"): the levels of
// the power levels event among them, or the defaults (the creator 100,
// others 0) without one; in room version 12 creators are infinitely
// powerful (auth.CreatorLevel). Malformed power levels count as the
// defaults: the event can only have been accepted by versions that
// tolerate them, and the ordering must still be total.
func (c *powerCache) senderPower(n int32) int64 {
	if v, ok := c.sender[n]; ok {
		return v
	}
	nd := &c.g.nodes[n]
	create := c.create
	if nd.isState && nd.key.Type == auth.TypeCreate {
		create = n // its sender is the creator
	} else if !c.rv.CreateEventDefinesRoomID {
		create = -1
		for _, a := range nd.auth {
			if an := &c.g.nodes[a]; an.isState && an.key.Type == auth.TypeCreate && an.key.StateKey == "" {
				create = a
				break
			}
		}
	}
	key := [2]int32{nd.plAuth, create}
	pl, ok := c.levels[key]
	if !ok {
		pl = c.load(key)
		c.levels[key] = pl
	}
	v := pl.UserLevel(nd.ev.Sender())
	c.sender[n] = v
	return v
}

func (c *powerCache) load(key [2]int32) *auth.PowerLevels {
	st := fixedState{}
	if key[0] >= 0 {
		st[auth.StateKey{Type: auth.TypePowerLevels}] = c.g.nodes[key[0]].ev
	}
	if key[1] >= 0 {
		st[auth.StateKey{Type: auth.TypeCreate}] = c.g.nodes[key[1]].ev
	}
	pl, err := auth.LoadPowerLevels(c.rv, st)
	if err != nil {
		delete(st, auth.StateKey{Type: auth.TypePowerLevels})
		if pl, err = auth.LoadPowerLevels(c.rv, st); err != nil {
			pl = auth.NoPowerLevels()
		}
	}
	return pl
}

// fixedState is an auth.State over a handful of events.
type fixedState map[auth.StateKey]auth.Event

func (s fixedState) StateEvent(eventType, stateKey string) auth.Event {
	return s[auth.StateKey{Type: eventType, StateKey: stateKey}]
}
