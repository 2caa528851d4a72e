package event

import (
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// Proto is an event about to be built: everything but the hashes, the
// signatures and (for room versions 1 and 2) the event id.
type Proto struct {
	Sender   id.UserID
	Type     string
	StateKey *string
	// Content is the content object; nil means {}.
	Content json.RawMessage
	// RoomID is "" only for a room version 12 create event.
	RoomID id.RoomID
	// PrevEvents and AuthEvents: in room versions 1 and 2 each Ref should
	// carry the referenced event's reference hash (Event.Ref does).
	PrevEvents     []Ref
	AuthEvents     []Ref
	Depth          int64
	OriginServerTS int64
	// Redacts is the redacted event of an m.room.redaction before room
	// version 11; from 11 on it belongs in Content and this must be "".
	Redacts id.EventID
}

// Refs makes references from plain event ids, for room versions 3 and
// later where no hashes are carried.
func Refs(ids ...id.EventID) []Ref {
	refs := make([]Ref, len(ids))
	for i, e := range ids {
		refs[i] = Ref{ID: e}
	}
	return refs
}

// Build produces the complete event of p, hashed and signed by server with
// key k, and parses it back so that it is checked like any received event.
// Room versions 1 and 2 get a fresh event id "$random:server"; versions
// before 11 carry the legacy origin field.
func Build(v roomversion.Version, p Proto, server id.ServerName, k signing.Key) (*Event, error) {
	content := canonicaljson.ObjectValue()
	if p.Content != nil {
		var err error
		if content, err = canonicaljson.Parse(p.Content, v.StrictCanonicalJSON); err != nil {
			return nil, fmt.Errorf("build event: content: %w", err)
		}
	}
	ms := []canonicaljson.Member{
		{Key: "type", Value: canonicaljson.StringValue(p.Type)},
		{Key: "sender", Value: canonicaljson.StringValue(string(p.Sender))},
		{Key: "content", Value: content},
		{Key: "depth", Value: canonicaljson.IntValue(p.Depth)},
		{Key: "origin_server_ts", Value: canonicaljson.IntValue(p.OriginServerTS)},
		{Key: "prev_events", Value: refsValue(v, p.PrevEvents)},
		{Key: "auth_events", Value: refsValue(v, p.AuthEvents)},
		{Key: "hashes", Value: canonicaljson.ObjectValue()},
		{Key: "signatures", Value: canonicaljson.ObjectValue()},
	}
	add := func(key string, val canonicaljson.Value) {
		ms = append(ms, canonicaljson.Member{Key: key, Value: val})
	}
	if p.StateKey != nil {
		add("state_key", canonicaljson.StringValue(*p.StateKey))
	}
	if p.RoomID != "" {
		add("room_id", canonicaljson.StringValue(string(p.RoomID)))
	}
	if p.Redacts != "" {
		if v.V11Semantics {
			return nil, fmt.Errorf("%w: room version %s carries redacts in content", ErrInvalidEvent, v.ID)
		}
		add("redacts", canonicaljson.StringValue(string(p.Redacts)))
	}
	if !v.V11Semantics {
		add("origin", canonicaljson.StringValue(string(server)))
	}
	if v.EventFormat == roomversion.FormatV1 {
		eid, err := randomEventID(server)
		if err != nil {
			return nil, err
		}
		add("event_id", canonicaljson.StringValue(string(eid)))
	}
	signed, err := HashAndSign(v, canonicaljson.ObjectValue(ms...), server, k)
	if err != nil {
		return nil, err
	}
	return Parse(v, canonicaljson.Encode(signed))
}

func refsValue(v roomversion.Version, refs []Ref) canonicaljson.Value {
	elems := make([]canonicaljson.Value, len(refs))
	for i, r := range refs {
		if v.EventFormat != roomversion.FormatV1 {
			elems[i] = canonicaljson.StringValue(string(r.ID))
			continue
		}
		hashes := canonicaljson.ObjectValue()
		if r.SHA256 != "" {
			hashes = hashes.With("sha256", canonicaljson.StringValue(r.SHA256))
		}
		elems[i] = canonicaljson.ArrayValue(canonicaljson.StringValue(string(r.ID)), hashes)
	}
	return canonicaljson.ArrayValue(elems...)
}

// randomEventID makes a room version 1/2 event id: 18 random bytes are
// enough to never collide and stay well within 255 bytes.
func randomEventID(server id.ServerName) (id.EventID, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("build event: random event id: %w", err)
	}
	return id.EventID("$" + signing.EncodeURLBase64(b) + ":" + string(server)), nil
}
