// Package authtest builds room events for tests of the authorisation rules
// and of state resolution: events with ids, auth events (chosen by the
// spec's auth events selection), prev events, depth and timestamps, without
// hashing or signing. It is for tests only; production code never imports
// it.
package authtest

import (
	"encoding/json"
	"fmt"
	"maps"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Event is a plain event that implements auth.Event (and auth.ServerSigned
// when Signers is set).
type Event struct {
	ID       id.EventID
	Room     id.RoomID
	EvType   string
	Key      *string
	From     id.UserID
	Body     json.RawMessage
	Auth     []id.EventID
	Prev     []id.EventID
	RedactID id.EventID
	Dep      int64
	TS       int64
	// Signers, when not nil, are the servers whose signatures the event
	// carries; nil means "not known" and SignedBy reports true.
	Signers []id.ServerName
	// IsRejected marks an event as rejected, for CheckAuthEvents.
	IsRejected bool
}

var (
	_ auth.Event        = (*Event)(nil)
	_ auth.ServerSigned = (*Event)(nil)
)

func (e *Event) EventID() id.EventID        { return e.ID }
func (e *Event) RoomID() id.RoomID          { return e.Room }
func (e *Event) Type() string               { return e.EvType }
func (e *Event) StateKey() *string          { return e.Key }
func (e *Event) Sender() id.UserID          { return e.From }
func (e *Event) Content() json.RawMessage   { return e.Body }
func (e *Event) AuthEventIDs() []id.EventID { return e.Auth }
func (e *Event) PrevEventIDs() []id.EventID { return e.Prev }
func (e *Event) Redacts() id.EventID        { return e.RedactID }
func (e *Event) Depth() int64               { return e.Dep }
func (e *Event) OriginServerTS() int64      { return e.TS }
func (e *Event) Rejected() bool             { return e.IsRejected }

// SignedBy reports whether server is among Signers (always true when
// Signers is nil).
func (e *Event) SignedBy(server id.ServerName) bool {
	if e.Signers == nil {
		return true
	}
	for _, s := range e.Signers {
		if s == server {
			return true
		}
	}
	return false
}

// IsState reports whether the event has a state key.
func (e *Event) IsState() bool { return e.Key != nil }

// String is for test failure messages.
func (e *Event) String() string {
	if e.Key != nil {
		return fmt.Sprintf("%s(%s,%q by %s)", e.ID, e.EvType, *e.Key, e.From)
	}
	return fmt.Sprintf("%s(%s by %s)", e.ID, e.EvType, e.From)
}

// SK returns a pointer to a state key.
func SK(s string) *string { return &s }

// State is a room state keyed by (type, state key); it implements
// auth.State.
type State map[auth.StateKey]auth.Event

var _ auth.State = State(nil)

// StateEvent implements auth.State.
func (s State) StateEvent(eventType, stateKey string) auth.Event {
	ev, ok := s[auth.StateKey{Type: eventType, StateKey: stateKey}]
	if !ok {
		return nil
	}
	return ev
}

// With returns a copy of s with the state events evs applied in order
// (message events are ignored).
func (s State) With(evs ...auth.Event) State {
	out := maps.Clone(s)
	if out == nil {
		out = State{}
	}
	for _, ev := range evs {
		if sk := ev.StateKey(); sk != nil {
			out[auth.StateKey{Type: ev.Type(), StateKey: *sk}] = ev
		}
	}
	return out
}

// StateOf returns the state formed by the given state events.
func StateOf(evs ...auth.Event) State { return State{}.With(evs...) }

// Content marshals v to JSON for an event content; json.RawMessage and
// []byte are used as they are. It panics on values that do not marshal,
// since test data is fixed.
func Content(v any) json.RawMessage {
	switch b := v.(type) {
	case nil:
		return json.RawMessage(`{}`)
	case json.RawMessage:
		return b
	case []byte:
		return json.RawMessage(b)
	case string:
		return json.RawMessage(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("authtest: content does not marshal: " + err.Error())
	}
	return b
}

// Version returns a known room version by id, panicking on unknown ids.
func Version(v string) roomversion.Version { return roomversion.MustLookup(roomversion.ID(v)) }
