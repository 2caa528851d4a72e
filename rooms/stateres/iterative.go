package stateres

import (
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// partialState is a room state under construction, by node.
type partialState map[auth.StateKey]int32

// iterativeAuthChecks applies events in order to state, keeping each one the
// authorisation rules allow and ignoring the others (spec "Iterative auth
// checks"). A key the rules need that state lacks is taken from the event's
// own auth events, unless that auth event was rejected.
func iterativeAuthChecks(rv roomversion.Version, check CheckFunc, g *graph, create int32, state partialState, events []int32) {
	view := &checkState{g: g, state: state, create: create}
	for _, e := range events {
		nd := &g.nodes[e]
		if !nd.isState {
			continue
		}
		view.ev = nd
		if check(rv, nd.ev, view) != nil {
			continue
		}
		state[nd.key] = e
	}
}

// checkState is the auth.State one event is checked against during the
// iterative auth checks.
type checkState struct {
	g     *graph
	state partialState
	ev    *node
	// create is the room's create event in room version 12, where events do
	// not list it in their auth events (spec v12 "Authorisation rules", rule
	// 2: the room id names it); -1 otherwise.
	create int32
}

var _ auth.State = (*checkState)(nil)

func (s *checkState) StateEvent(eventType, stateKey string) auth.Event {
	k := auth.StateKey{Type: eventType, StateKey: stateKey}
	if n, ok := s.state[k]; ok {
		return s.g.nodes[n].ev
	}
	for _, a := range s.ev.auth {
		an := &s.g.nodes[a]
		if an.isState && an.key == k && !an.rejected {
			return an.ev
		}
	}
	if s.create >= 0 && eventType == typeCreate && stateKey == "" {
		return s.g.nodes[s.create].ev
	}
	return nil
}
