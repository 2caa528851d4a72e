package rooms

import (
	"maps"

	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// State is a room state: one event per (type, state key). Values handed
// out by the store are shared and must not be modified; With copies.
type State map[auth.StateKey]*event.Event

var _ auth.State = State(nil)

// StateEvent implements auth.State.
func (s State) StateEvent(eventType, stateKey string) auth.Event {
	if ev, ok := s[auth.StateKey{Type: eventType, StateKey: stateKey}]; ok {
		return ev
	}
	return nil
}

// Get is StateEvent with the concrete type; nil when absent.
func (s State) Get(eventType, stateKey string) *event.Event {
	return s[auth.StateKey{Type: eventType, StateKey: stateKey}]
}

// With returns a copy of s with ev applied (ev must be a state event).
func (s State) With(ev *event.Event) State {
	out := make(State, len(s)+1)
	maps.Copy(out, s)
	out[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	return out
}

// Membership is the membership of user in s ("" when none).
func (s State) Membership(user string) string {
	if ev := s.Get(auth.TypeMember, user); ev != nil {
		return ev.Membership()
	}
	return ""
}
