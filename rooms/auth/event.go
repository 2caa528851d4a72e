// Package auth implements the authorisation rules of every room version
// (spec "Room Versions", "Authorization rules"): whether an event is allowed
// given a set of state events. It is pure: no database, no network, and it
// imports nothing of Parley's but id, mxerr, rooms/roomversion and, for
// third-party invite signatures, rooms/canonicaljson and rooms/signing.
//
// Check runs the rules against a state; CheckAuthEvents first runs the
// rules about an event's auth_events list. Rejections are *RuleError values
// that cite the rule as the room version's page numbers it and match both
// ErrNotAllowed and mxerr.Forbidden. The content types the rules read
// (PowerLevels, Create, Member, JoinRules, ThirdPartyInvite) and
// m.room.server_acl's ServerACL are exported for the rest of the room code.
// Events may also implement ServerSigned (join_authorised_via_users_server
// signatures) and Rejecter (rejected auth events).
package auth

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// Event is what the authorisation rules read of an event. The room graph's
// concrete event type implements it; so do the test events of this package.
type Event interface {
	EventID() id.EventID
	// RoomID is "" for a room version 12 create event, which has none.
	RoomID() id.RoomID
	Type() string
	// StateKey is nil for a message event.
	StateKey() *string
	Sender() id.UserID
	// Content is the raw JSON object of the event's content.
	Content() json.RawMessage
	AuthEventIDs() []id.EventID
	PrevEventIDs() []id.EventID
	// Redacts is the event an m.room.redaction redacts (top level before
	// room version 11, in content from 11), "" otherwise.
	Redacts() id.EventID
	Depth() int64
	OriginServerTS() int64
}

// StateKey identifies a piece of room state.
type StateKey struct {
	Type     string
	StateKey string
}

// State gives the state events an event is checked against: its auth
// events, the room state before it, or the current state.
type State interface {
	// StateEvent returns the state event with that type and state key, or
	// nil when there is none.
	StateEvent(eventType, stateKey string) Event
}
