// Package event is the room graph's event (PDU) type for every room version:
// parsing and validating the federation format, event ids, content and
// reference hashes, redaction, signing as a server and verifying received
// events and building new events (their auth events come from
// auth.SelectAuthEvents).
//
// It is pure: no database, no network. It imports only the standard
// library and Parley's id, rooms/canonicaljson, rooms/signing,
// rooms/roomversion and rooms/auth (for the auth.Event contract).
package event

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

var _ auth.Event = (*Event)(nil)

// MaxSize is the largest an event may be, in bytes of canonical JSON in
// the federation format, signatures included (client-server API, "Size
// limits").
const MaxSize = 65536

// maxRawSize bounds what Parse reads at all; whitespace can make received
// bytes longer than the canonical form, but not by this much.
const maxRawSize = 4 * MaxSize

// Event is one PDU. It is immutable; Raw returns the exact bytes it was
// parsed from, which are what must be stored and relayed (signatures by
// other servers cover fields this code may not know).
type Event struct {
	version roomversion.Version
	raw     []byte
	obj     canonicaljson.Value
	// refHash is computed once, on first use, by ReferenceHash: Parse
	// needs it for the id at once, ParseStored trusts the stored id and
	// only rarely needs the hash (Ref of a room version 1 or 2 event).
	refOnce sync.Once
	refHash [32]byte

	eventID  id.EventID
	roomID   id.RoomID
	typ      string
	stateKey *string
	sender   id.UserID
	content  canonicaljson.Value
	prev     []Ref
	auth     []Ref
	redacts  id.EventID
	depth    int64
	ts       int64
	origin   id.ServerName

	contentOnce sync.Once
	contentJSON json.RawMessage
}

// Ref is a reference to another event. SHA256 is that event's reference
// hash in unpadded Base64; room versions 1 and 2 carry it next to the id in
// prev_events and auth_events, later versions have only the id.
type Ref struct {
	ID     id.EventID
	SHA256 string
}

// Parse parses and validates the federation form of an event of the given
// room version. Events of room versions 6 and later must be strict
// canonical JSON. It does not check hashes or signatures (see Verify).
func Parse(version roomversion.Version, raw []byte) (*Event, error) {
	if version.EventFormat == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedVersion, version.ID)
	}
	if len(raw) > maxRawSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	obj, err := canonicaljson.Parse(raw, version.StrictCanonicalJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return fromValue(version, obj, raw)
}

// fromValue validates obj and fills the event; raw is kept as Raw().
func fromValue(version roomversion.Version, obj canonicaljson.Value, raw []byte) (*Event, error) {
	if obj.Kind() != canonicaljson.Object {
		return nil, fmt.Errorf("%w: a JSON %s, want an object", ErrInvalidEvent, obj.Kind())
	}
	e := &Event{version: version, raw: raw, obj: obj}
	if err := e.validate(); err != nil {
		return nil, err
	}
	if n := canonicaljson.Size(obj); n > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes of canonical JSON, more than %d", ErrTooLarge, n, MaxSize)
	}
	if version.EventFormat != roomversion.FormatV1 {
		e.eventID = eventIDFromHash(version.EventFormat, e.ReferenceHash())
	}
	return e, nil
}

// ParseStored parses an event this server stored itself, after checking
// it: its id was computed from its reference hash when it was built, or
// when it was received (Parse), and stored beside its bytes. It trusts
// eventID instead of hashing the event again (the reference hash was a
// third of a stored event's parse, and /sync parses every event it sends);
// the hash is computed only if ReferenceHash or Ref asks for it. Room
// versions 1 and 2 carry the id in the event and keep it. Use Parse for
// bytes from anywhere else.
func ParseStored(version roomversion.Version, raw []byte, eventID id.EventID) (*Event, error) {
	if version.EventFormat == 0 {
		return nil, fmt.Errorf("%w %q", ErrUnsupportedVersion, version.ID)
	}
	obj, err := canonicaljson.Parse(raw, version.StrictCanonicalJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if obj.Kind() != canonicaljson.Object {
		return nil, fmt.Errorf("%w: a JSON %s, want an object", ErrInvalidEvent, obj.Kind())
	}
	e := &Event{version: version, raw: raw, obj: obj}
	if err := e.validate(); err != nil {
		return nil, err
	}
	if version.EventFormat != roomversion.FormatV1 {
		if eventID == "" {
			return nil, fmt.Errorf("%w: a stored event without its id", ErrInvalidEvent)
		}
		e.eventID = eventID
	}
	return e, nil
}

// Version is the room version the event was parsed for.
func (e *Event) Version() roomversion.Version { return e.version }

// Raw returns the bytes the event was parsed from; do not modify them.
func (e *Event) Raw() []byte { return e.raw }

// MarshalJSON returns Raw, so that events embedded in federation
// responses go out exactly as they were received.
func (e *Event) MarshalJSON() ([]byte, error) { return e.raw, nil }

// JSON returns the parsed event object.
func (e *Event) JSON() canonicaljson.Value { return e.obj }

// EventID is the event's id: the event_id field in room versions 1 and 2,
// "$" and the reference hash from version 3 on.
func (e *Event) EventID() id.EventID { return e.eventID }

// RoomID is the room_id field; "" for a room version 12 create event, whose
// room id is derived from its own id (see RoomIDOfCreate).
func (e *Event) RoomID() id.RoomID { return e.roomID }

// Type is the event type.
func (e *Event) Type() string { return e.typ }

// StateKey is nil for a message event.
func (e *Event) StateKey() *string { return e.stateKey }

// IsState reports whether the event has a state key.
func (e *Event) IsState() bool { return e.stateKey != nil }

// Sender is the user who sent the event.
func (e *Event) Sender() id.UserID { return e.sender }

// Content returns the event's content object as canonical JSON. It is
// encoded once, on first use; do not modify it.
func (e *Event) Content() json.RawMessage {
	e.contentOnce.Do(func() { e.contentJSON = canonicaljson.Encode(e.content) })
	return e.contentJSON
}

// ContentValue returns the event's content object.
func (e *Event) ContentValue() canonicaljson.Value { return e.content }

// Membership is content.membership of a member event, "" otherwise.
func (e *Event) Membership() string {
	if e.typ != "m.room.member" {
		return ""
	}
	m, _ := e.content.GetString("membership")
	return m
}

// PrevEventIDs are the ids of the event's prev_events.
func (e *Event) PrevEventIDs() []id.EventID { return refIDs(e.prev) }

// AuthEventIDs are the ids of the event's auth_events.
func (e *Event) AuthEventIDs() []id.EventID { return refIDs(e.auth) }

// PrevEvents are the event's prev_events with their hashes (v1/v2).
func (e *Event) PrevEvents() []Ref { return append([]Ref(nil), e.prev...) }

// AuthEvents are the event's auth_events with their hashes (v1/v2).
func (e *Event) AuthEvents() []Ref { return append([]Ref(nil), e.auth...) }

func refIDs(refs []Ref) []id.EventID {
	ids := make([]id.EventID, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids
}

// Redacts is the event an m.room.redaction redacts: the top-level key
// before room version 11, content.redacts from 11 on; "" otherwise.
func (e *Event) Redacts() id.EventID { return e.redacts }

// Depth is the event's depth.
func (e *Event) Depth() int64 { return e.depth }

// OriginServerTS is the sender's server's timestamp, in milliseconds.
func (e *Event) OriginServerTS() int64 { return e.ts }

// Origin is the legacy origin field (room versions before 11 carry it),
// "" when absent. It is not authenticated: use Sender().Server().
func (e *Event) Origin() id.ServerName { return e.origin }

// Unsigned returns the unsigned object as canonical JSON, nil when absent.
func (e *Event) Unsigned() json.RawMessage {
	u, ok := e.obj.Get("unsigned")
	if !ok {
		return nil
	}
	return canonicaljson.Encode(u)
}

// Signatures returns signatures[server][key id] = base64 signature.
func (e *Event) Signatures() map[id.ServerName]map[string]string {
	sigs, _ := e.obj.Get("signatures")
	out := make(map[id.ServerName]map[string]string, sigs.Len())
	for _, s := range sigs.Members() {
		keys := make(map[string]string, s.Value.Len())
		for _, k := range s.Value.Members() {
			if v, ok := k.Value.Str(); ok {
				keys[k.Key] = v
			}
		}
		out[id.ServerName(s.Key)] = keys
	}
	return out
}

// Hashes returns hashes[algorithm] = base64 hash.
func (e *Event) Hashes() map[string]string {
	h, _ := e.obj.Get("hashes")
	out := make(map[string]string, h.Len())
	for _, m := range h.Members() {
		if v, ok := m.Value.Str(); ok {
			out[m.Key] = v
		}
	}
	return out
}

// ReferenceHash is the sha256 reference hash of the event
// (server-server API, "Calculating the reference hash for an event").
func (e *Event) ReferenceHash() [32]byte {
	e.refOnce.Do(func() { e.refHash = referenceHash(e.version.Redaction, e.obj) })
	return e.refHash
}

// Ref returns a reference to this event for another event's prev_events
// or auth_events.
func (e *Event) Ref() Ref {
	h := e.ReferenceHash()
	return Ref{ID: e.eventID, SHA256: encodeStd(h[:])}
}
