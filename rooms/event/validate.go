package event

import (
	"fmt"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Limits of the PDU definitions (data/api/server-server/definitions/pdu_*).
const (
	maxPrevEvents = 20
	maxAuthEvents = 10
	maxKeyLength  = 255 // type and state_key (client-server API, "Size limits")
	hashIDLength  = 43  // unpadded base64 of a sha256
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
}

// validate checks the event format of e's room version and fills e's
// fields from e.obj.
func (e *Event) validate() error {
	obj, v := e.obj, e.version
	var ok bool

	if e.typ, ok = obj.GetString("type"); !ok {
		return invalidf("type is missing or not a string")
	}
	if len(e.typ) > maxKeyLength {
		return invalidf("type is longer than %d bytes", maxKeyLength)
	}
	if sk, present := obj.Get("state_key"); present {
		s, ok := sk.Str()
		if !ok {
			return invalidf("state_key is not a string")
		}
		if len(s) > maxKeyLength {
			return invalidf("state_key is longer than %d bytes", maxKeyLength)
		}
		e.stateKey = &s
	}

	sender, ok := obj.GetString("sender")
	if !ok {
		return invalidf("sender is missing or not a string")
	}
	uid, err := id.ParseUserID(sender)
	if err != nil {
		return invalidf("sender: %v", err)
	}
	e.sender = uid

	if err := e.validateRoomID(); err != nil {
		return err
	}

	if e.ts, err = intField(obj, "origin_server_ts"); err != nil {
		return err
	}
	if e.depth, err = intField(obj, "depth"); err != nil {
		return err
	}
	if e.depth < 0 {
		return invalidf("depth is negative")
	}

	if e.content, ok = obj.Get("content"); !ok || e.content.Kind() != canonicaljson.Object {
		return invalidf("content is missing or not an object")
	}
	for _, key := range []string{"hashes", "signatures"} {
		if m, ok := obj.Get(key); !ok || m.Kind() != canonicaljson.Object {
			return invalidf("%s is missing or not an object", key)
		}
	}
	if u, ok := obj.Get("unsigned"); ok && u.Kind() != canonicaljson.Object {
		return invalidf("unsigned is not an object")
	}
	if o, ok := obj.Get("origin"); ok {
		s, isString := o.Str()
		if !isString {
			return invalidf("origin is not a string")
		}
		e.origin = id.ServerName(s)
	}

	if e.prev, err = e.refs("prev_events", maxPrevEvents); err != nil {
		return err
	}
	if e.auth, err = e.refs("auth_events", maxAuthEvents); err != nil {
		return err
	}

	if v.EventFormat == roomversion.FormatV1 {
		s, ok := obj.GetString("event_id")
		if !ok {
			return invalidf("event_id is missing or not a string")
		}
		if err := checkEventID(v, s); err != nil {
			return invalidf("event_id: %v", err)
		}
		e.eventID = id.EventID(s)
	}

	return e.validateRedacts()
}

func (e *Event) validateRoomID() error {
	s, present := e.obj.Get("room_id")
	if e.version.CreateEventDefinesRoomID && e.typ == "m.room.create" && e.stateKey != nil && *e.stateKey == "" {
		// Room version 12: the create event has no room_id; its id is the
		// room id (rooms/v12.md, auth rule 1.2).
		if present {
			return invalidf("a room version %s create event must not have a room_id", e.version.ID)
		}
		return nil
	}
	str, ok := s.Str()
	if !present || !ok {
		return invalidf("room_id is missing or not a string")
	}
	rid, err := id.ParseRoomID(str)
	if err != nil {
		return invalidf("room_id: %v", err)
	}
	if e.version.CreateEventDefinesRoomID {
		if !validHashID(str[1:], true) {
			return invalidf("room_id %q is not a room version %s room id", str, e.version.ID)
		}
	} else if !strings.Contains(str, ":") {
		return invalidf("room_id %q has no server name", str)
	}
	e.roomID = rid
	return nil
}

func (e *Event) validateRedacts() error {
	if e.typ != "m.room.redaction" {
		return nil
	}
	var r canonicaljson.Value
	var present bool
	if e.version.V11Semantics {
		r, present = e.content.Get("redacts")
	} else {
		r, present = e.obj.Get("redacts")
	}
	if !present {
		return nil
	}
	s, ok := r.Str()
	if !ok {
		return invalidf("redacts is not a string")
	}
	if err := checkEventID(e.version, s); err != nil {
		return invalidf("redacts: %v", err)
	}
	e.redacts = id.EventID(s)
	return nil
}

func intField(obj canonicaljson.Value, key string) (int64, error) {
	m, ok := obj.Get(key)
	if !ok {
		return 0, invalidf("%s is missing", key)
	}
	n, ok := m.Int()
	if !ok {
		return 0, invalidf("%s is not an integer", key)
	}
	return n, nil
}

// refs reads prev_events or auth_events: [event_id, {hashes}] pairs in room
// versions 1 and 2, plain event ids later.
func (e *Event) refs(key string, limit int) ([]Ref, error) {
	arr, ok := e.obj.Get(key)
	if !ok || arr.Kind() != canonicaljson.Array {
		return nil, invalidf("%s is missing or not an array", key)
	}
	if arr.Len() > limit {
		return nil, invalidf("%s has %d entries, more than %d", key, arr.Len(), limit)
	}
	refs := make([]Ref, 0, arr.Len())
	for i, item := range arr.Array() {
		var r Ref
		var s string
		if e.version.EventFormat == roomversion.FormatV1 {
			pair := item.Array()
			if item.Kind() != canonicaljson.Array || len(pair) != 2 || pair[1].Kind() != canonicaljson.Object {
				return nil, invalidf("%s[%d] is not an [event_id, hashes] pair", key, i)
			}
			if s, ok = pair[0].Str(); !ok {
				return nil, invalidf("%s[%d] has no event id", key, i)
			}
			r.SHA256, _ = pair[1].GetString("sha256")
		} else if s, ok = item.Str(); !ok {
			return nil, invalidf("%s[%d] is not a string", key, i)
		}
		if err := checkEventID(e.version, s); err != nil {
			return nil, invalidf("%s[%d]: %v", key, i, err)
		}
		r.ID = id.EventID(s)
		refs = append(refs, r)
	}
	return refs, nil
}

// checkEventID checks the event id grammar of a room version: $opaque:server
// in versions 1 and 2, "$" and 43 characters of (URL-safe from v4) base64
// later (rooms/fragments/v1-event-ids.md, v4-event-ids.md).
func checkEventID(v roomversion.Version, s string) error {
	if _, err := id.ParseEventID(s); err != nil {
		return err
	}
	switch v.EventFormat {
	case roomversion.FormatV1:
		if !strings.Contains(s, ":") {
			return fmt.Errorf("event id %q has no server name", s)
		}
	case roomversion.FormatV3:
		if !validHashID(s[1:], false) {
			return fmt.Errorf("event id %q is not a room version 3 event id", s)
		}
	default:
		if !validHashID(s[1:], true) {
			return fmt.Errorf("event id %q is not a room version %s event id", s, v.ID)
		}
	}
	return nil
}

// validHashID reports whether s is a sha256 in unpadded base64, URL-safe or
// standard.
func validHashID(s string, urlSafe bool) bool {
	if len(s) != hashIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case urlSafe && (c == '-' || c == '_'):
		case !urlSafe && (c == '+' || c == '/'):
		default:
			return false
		}
	}
	return true
}
