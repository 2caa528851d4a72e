package event

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// AuthEventsNeeded is the auth events selection rule (server-server API,
// "Auth events selection"): the state an event of this type, state key,
// sender and content must cite in auth_events, each "if any". The create
// event is not cited in room version 12, whose room id stands for it.
// stateKey is ignored for events other than m.room.member; content may be
// nil.
func AuthEventsNeeded(v roomversion.Version, eventType, stateKey string, sender id.UserID, content json.RawMessage) []auth.StateKey {
	if eventType == "m.room.create" {
		return nil
	}
	var keys []auth.StateKey
	add := func(t, sk string) {
		k := auth.StateKey{Type: t, StateKey: sk}
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	if !v.CreateEventDefinesRoomID {
		add("m.room.create", "")
	}
	add("m.room.power_levels", "")
	add("m.room.member", string(sender))
	if eventType != "m.room.member" {
		return keys
	}
	add("m.room.member", stateKey)
	// Content is best effort: an unparsable content has no membership and
	// the auth rules reject the event anyway.
	c, _ := canonicaljson.ParseLenient(content)
	membership, _ := c.GetString("membership")
	switch membership {
	case "join", "invite", "knock":
		add("m.room.join_rules", "")
	}
	if membership == "invite" {
		tpi, _ := c.Get("third_party_invite")
		signed, _ := tpi.Get("signed")
		if token, ok := signed.GetString("token"); ok {
			add("m.room.third_party_invite", token)
		}
	}
	if membership == "join" && v.RestrictedJoins {
		if via, ok := c.GetString("join_authorised_via_users_server"); ok {
			add("m.room.member", via)
		}
	}
	return keys
}
