package event

import (
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// topLevelV1 are the keys redaction keeps in room versions 1–10
// (rooms/fragments/v1-redactions.md, v6, v9 and v8 lists agree on them).
var topLevelV1 = map[string]bool{
	"event_id": true, "type": true, "room_id": true, "sender": true, "state_key": true,
	"content": true, "hashes": true, "signatures": true, "depth": true, "prev_events": true,
	"prev_state": true, "auth_events": true, "origin": true, "origin_server_ts": true,
	"membership": true,
}

// topLevelV11 drops origin, membership and prev_state
// (rooms/fragments/v11-redactions.md).
var topLevelV11 = map[string]bool{
	"event_id": true, "type": true, "room_id": true, "sender": true, "state_key": true,
	"content": true, "hashes": true, "signatures": true, "depth": true, "prev_events": true,
	"auth_events": true, "origin_server_ts": true,
}

var powerLevelKeys = []string{"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}

// contentKeys returns the content keys redaction keeps for an event type,
// or nil when it keeps none. keepAll is true for v11 create events.
func contentKeys(rules roomversion.RedactionRules, eventType string) (keys []string, keepAll bool) {
	switch eventType {
	case "m.room.member":
		if rules >= roomversion.RedactionV9 {
			return []string{"membership", "join_authorised_via_users_server"}, false
		}
		return []string{"membership"}, false
	case "m.room.create":
		if rules >= roomversion.RedactionV11 {
			return nil, true
		}
		return []string{"creator"}, false
	case "m.room.join_rules":
		if rules >= roomversion.RedactionV8 {
			return []string{"join_rule", "allow"}, false
		}
		return []string{"join_rule"}, false
	case "m.room.power_levels":
		if rules >= roomversion.RedactionV11 {
			return append([]string{"invite"}, powerLevelKeys...), false
		}
		return powerLevelKeys, false
	case "m.room.aliases":
		if rules == roomversion.RedactionV1 {
			return []string{"aliases"}, false
		}
	case "m.room.history_visibility":
		return []string{"history_visibility"}, false
	case "m.room.redaction":
		if rules >= roomversion.RedactionV11 {
			return []string{"redacts"}, false
		}
	}
	return nil, false
}

// Redact applies the redaction algorithm of the given rules to an event
// object (client-server API "Redactions", and the room version fragments).
// Hashing and signing use it: signatures and reference hashes cover only
// what survives redaction. A non-object is returned unchanged.
func Redact(rules roomversion.RedactionRules, obj canonicaljson.Value) canonicaljson.Value {
	if obj.Kind() != canonicaljson.Object {
		return obj
	}
	top := topLevelV1
	if rules >= roomversion.RedactionV11 {
		top = topLevelV11
	}
	out := obj.Filter(func(k string) bool { return top[k] })
	content, ok := out.Get("content")
	if !ok {
		return out
	}
	eventType, _ := obj.GetString("type")
	keys, keepAll := contentKeys(rules, eventType)
	switch {
	case content.Kind() != canonicaljson.Object:
		content = canonicaljson.ObjectValue()
	case keepAll:
	default:
		kept := content.Filter(func(k string) bool {
			for _, key := range keys {
				if k == key {
					return true
				}
			}
			return false
		})
		// v11: a member event keeps third_party_invite.signed and nothing
		// else of third_party_invite.
		if rules >= roomversion.RedactionV11 && eventType == "m.room.member" {
			if tpi, ok := content.Get("third_party_invite"); ok {
				if signed, ok := tpi.Get("signed"); ok {
					kept = kept.With("third_party_invite", canonicaljson.ObjectValue(canonicaljson.Member{Key: "signed", Value: signed}))
				}
			}
		}
		content = kept
	}
	return out.With("content", content)
}

// Redacted returns the event as redaction leaves it: same id, same
// reference hash, signatures still valid.
func (e *Event) Redacted() *Event {
	red := Redact(e.version.Redaction, e.obj)
	ev, err := fromValue(e.version, red, canonicaljson.Encode(red))
	if err != nil {
		// Redaction only removes keys that the format does not require, so
		// a valid event stays valid.
		panic("event: redacted event no longer valid: " + err.Error())
	}
	return ev
}
