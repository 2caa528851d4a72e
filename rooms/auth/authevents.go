package auth

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// ErrMissingAuthEvent is returned by CheckAuthEvents when an id in the
// event's auth_events has no event in the list given: the caller must fetch
// it first. It does not wrap ErrNotAllowed: the event is not rejected yet.
var ErrMissingAuthEvent = errors.New("auth event not supplied")

// Rejecter is implemented by events that know whether they were rejected;
// CheckAuthEvents rejects an event that cites one (rule "entries which were
// themselves rejected").
type Rejecter interface {
	Rejected() bool
}

// AuthEventKeys is the spec's auth events selection (server-server API,
// "Auth events selection"): the state keys whose current events an event of
// this shape should cite. CheckAuthEvents uses it to reject entries nobody
// should have selected.
func AuthEventKeys(rv roomversion.Version, ev Event) []StateKey {
	return SelectAuthEvents(rv, ev.Type(), ev.StateKey(), ev.Sender(), ev.Content())
}

// SelectAuthEvents is AuthEventKeys for an event that is not built yet:
// builders use it to fill auth_events from the room's current state. The
// create event is not selected in room version 12, whose room id stands
// for it. An unparsable content selects no membership-specific state: the
// auth rules reject such an event anyway.
func SelectAuthEvents(rv roomversion.Version, eventType string, stateKey *string, sender id.UserID, content json.RawMessage) []StateKey {
	if eventType == TypeCreate {
		return nil
	}
	keys := make([]StateKey, 0, 6)
	add := func(t, sk string) {
		k := StateKey{Type: t, StateKey: sk}
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	if !rv.CreateEventDefinesRoomID {
		add(TypeCreate, "")
	}
	add(TypePowerLevels, "")
	add(TypeMember, string(sender))
	if eventType != TypeMember || stateKey == nil {
		return keys
	}
	add(TypeMember, *stateKey)
	m, err := ParseMember(content)
	if err != nil {
		return keys
	}
	switch m.Membership {
	case Join, Invite, Knock:
		add(TypeJoinRules, "")
	}
	if m.Membership == Invite && m.ThirdPartyInvite != nil {
		if signed, err := member(m.ThirdPartyInvite, "signed"); err == nil && signed != nil {
			if raw, err := member(signed, "token"); err == nil {
				if token, ok := stringValue(raw); ok {
					add(TypeThirdPartyInvite, token)
				}
			}
		}
	}
	if m.Membership == Join && rv.RestrictedJoins && m.HasJoinAuthorised {
		add(TypeMember, string(m.JoinAuthorisedViaUsersServer))
	}
	return keys
}

// stateMap is a State built from a list of events.
type stateMap map[StateKey]Event

func (s stateMap) StateEvent(eventType, stateKey string) Event {
	return s[StateKey{Type: eventType, StateKey: stateKey}]
}

// CheckAuthEvents runs the rules about ev's auth_events list (rule 2 of
// v1–11, 3 of v12: no duplicates, only selected keys, none rejected, the
// create event present — or, in v12, absent — and every one in ev's room)
// and then Check against the state those auth events form.
//
// authEvents are the events ev.AuthEventIDs() names, in any order. In room
// version 12, where the create event is not listed, authEvents must also
// hold the room's create event (the one whose id the room id is); it is
// used as state but not counted as listed.
func CheckAuthEvents(rv roomversion.Version, ev Event, authEvents []Event) error {
	n := numberingFor(rv)
	byID := make(map[id.EventID]Event, len(authEvents))
	for _, a := range authEvents {
		byID[a.EventID()] = a
	}
	var allowed []StateKey
	if ev.Type() != TypeCreate {
		allowed = AuthEventKeys(rv, ev)
	}
	state := make(stateMap, len(authEvents))
	for _, aid := range ev.AuthEventIDs() {
		a, ok := byID[aid]
		if !ok {
			return fmt.Errorf("%w: %s", ErrMissingAuthEvent, aid)
		}
		sk := a.StateKey()
		if sk == nil {
			return denyf(sub(n.authEvents, 2), "auth event %s is not a state event", aid)
		}
		key := StateKey{Type: a.Type(), StateKey: *sk}
		if _, dup := state[key]; dup {
			return denyf(sub(n.authEvents, 1), "auth events list (%s, %q) twice", key.Type, key.StateKey)
		}
		if !containsKey(allowed, key) {
			return denyf(sub(n.authEvents, 2), "auth event %s of (%s, %q) is not one the event should cite", aid, key.Type, key.StateKey)
		}
		if r, ok := a.(Rejecter); ok && r.Rejected() {
			return denyf(sub(n.authEvents, 3), "auth event %s was rejected", aid)
		}
		if a.RoomID() != ev.RoomID() {
			return denyf(sub(n.authEvents, 5), "auth event %s is in another room", aid)
		}
		state[key] = a
	}
	if rv.CreateEventDefinesRoomID {
		if ev.Type() != TypeCreate {
			if room := string(ev.RoomID()); len(room) > 1 {
				if create, ok := byID[id.EventID("$"+room[1:])]; ok {
					if r, ok := create.(Rejecter); ok && r.Rejected() {
						return deny("2", "the room's create event was rejected")
					}
					if create.Type() == TypeCreate {
						state[StateKey{Type: TypeCreate}] = create
					}
				}
			}
		}
	} else if ev.Type() != TypeCreate {
		if _, ok := state[StateKey{Type: TypeCreate}]; !ok {
			return deny(sub(n.authEvents, 4), "no m.room.create event among the auth events")
		}
	}
	return Check(rv, ev, state)
}

func containsKey(keys []StateKey, k StateKey) bool {
	for _, have := range keys {
		if have == k {
			return true
		}
	}
	return false
}
