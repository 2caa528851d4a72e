package auth_test

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

const (
	joinedRule     = "1-5:6 6-11:5 12:6"
	tpiRule        = "1-5:7.1 6-11:6.1 12:7.1"
	requiredRule   = "1-5:8 6-11:7 12:8"
	stateKeyRule   = "1-5:9 6-11:8 12:9"
	otherwiseAllow = "1-2:12 3-5:11 6-11:10 12:11"
	federateRule   = "1-11:3 12:4"
)

// createEvent builds a create event outside any room.
func createEvent(r *authtest.Room, room id.RoomID, sender id.UserID, content string, prev []id.EventID) auth.Event {
	if r.Version.CreateEventDefinesRoomID {
		room = ""
	}
	return &authtest.Event{ID: "$create2", Room: room, EvType: auth.TypeCreate, Key: authtest.SK(""),
		From: sender, Body: json.RawMessage(content), Prev: prev, Dep: 1, TS: 1}
}

func TestCreateRules(t *testing.T) {
	creatorContent := `{"creator":"@alice:a.test","room_version":"1"}`
	runRuleCases(t, []ruleCase{
		{name: "create event with prev_events", versions: "1-12", rule: "1.1",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, creatorContent, []id.EventID{"$x"})
			}},
		{name: "create event without prev_events", versions: "1-10", rule: "1.5", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, creatorContent, nil)
			}},
		{name: "create event whose room id is on another server", versions: "1-11", rule: "1.2",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:b.test", alice, creatorContent, nil)
			}},
		{name: "create event with a room_id", versions: "12", rule: "1.2",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				ev := createEvent(r, "", alice, `{}`, nil).(*authtest.Event)
				ev.Room = "!new"
				return ev
			}},
		{name: "create event with an unknown room_version", versions: "1-12", rule: "1.3",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, `{"creator":"@alice:a.test","room_version":"99"}`, nil)
			}},
		{name: "create event with a non-string room_version", versions: "1-12", rule: "1.3",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, `{"creator":"@alice:a.test","room_version":10}`, nil)
			}},
		{name: "create event without creator", versions: "1-10", rule: "1.4",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, `{"room_version":"5"}`, nil)
			}},
		{name: "create event without creator from v11", versions: "11", rule: "1.4", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "!new:a.test", alice, `{"room_version":"11"}`, nil)
			}},
		{name: "create event with valid additional_creators", versions: "12", rule: "1.5", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "", alice, `{"room_version":"12","additional_creators":["@bob:b.test"]}`, nil)
			}},
		{name: "create event with an invalid user in additional_creators", versions: "12", rule: "1.4",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "", alice, `{"room_version":"12","additional_creators":["bob"]}`, nil)
			}},
		{name: "create event with additional_creators not an array", versions: "12", rule: "1.4",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return createEvent(r, "", alice, `{"additional_creators":"@bob:b.test"}`, nil)
			}},
		{name: "event whose room id is not its create event's id", versions: "12", rule: "2",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				ev := message(r, alice).(*authtest.Event)
				ev.Room = "!someotherroom"
				return ev
			}},
		{name: "event in the room its create event defines", versions: "12", rule: otherwiseAllow, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event { return message(r, alice) }},
	})
}

func TestCommonRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{name: "event from another server in a room with m.federate false", versions: "1-12", rule: federateRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, map[string]any{"m.federate": false})
				return r.Build(memberEv(bob, bob, membership(auth.Join)))
			}},
		{name: "event from the creator's server in a room with m.federate false", versions: "1-12",
			rule: "1-5:5.2.1 6-7:4.2.1 8-11:4.3.1 12:5.3.1", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, map[string]any{"m.federate": false})
				return r.Build(memberEv(alice, alice, membership(auth.Join)))
			}},
		{name: "m.room.aliases from a non-member for its own server", versions: "1-5", rule: "4.3", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(stateEv(auth.TypeAliases, "b.test", bob, map[string]any{"aliases": []string{"#x:b.test"}}))
			}},
		{name: "m.room.aliases without state_key", versions: "1-5", rule: "4.1",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(authtest.Spec{Type: auth.TypeAliases, Sender: bob, Content: map[string]any{}})
			}},
		{name: "m.room.aliases for another server", versions: "1-5", rule: "4.2",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(stateEv(auth.TypeAliases, "a.test", bob, map[string]any{}))
			}},
		{name: "m.room.aliases from a non-member once the special case is gone", versions: "6-12", rule: joinedRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(stateEv(auth.TypeAliases, "b.test", bob, map[string]any{}))
			}},
		{name: "message from a non-member", versions: "1-12", rule: joinedRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event { return message(r, bob) }},
		{name: "message from an invited user", versions: "1-12", rule: joinedRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Member(alice, bob, auth.Invite)
				return message(r, bob)
			}},
		{name: "message from a member", versions: "1-12", rule: otherwiseAllow, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return message(r, bob)
			}},
		{name: "m.room.third_party_invite at the invite level", versions: "1-12", rule: tpiRule, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(stateEv(auth.TypeThirdPartyInvite, "tok", bob, map[string]any{"display_name": "x"}))
			}},
		{name: "m.room.third_party_invite below the invite level", versions: "1-12", rule: tpiRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				setLevels(r, nil, map[string]any{"invite": 10})
				return r.Build(stateEv(auth.TypeThirdPartyInvite, "tok", bob, map[string]any{"display_name": "x"}))
			}},
		{name: "message below events_default", versions: "1-12", rule: requiredRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				setLevels(r, nil, map[string]any{"events_default": 10})
				return message(r, bob)
			}},
		{name: "message below its events entry", versions: "1-12", rule: requiredRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				setLevels(r, nil, map[string]any{"events": map[string]any{"m.room.message": 1}})
				return message(r, bob)
			}},
		{name: "state event below state_default", versions: "1-12", rule: requiredRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(stateEv("m.room.topic", "", bob, map[string]any{"topic": "x"}))
			}},
		{name: "state event at its events entry", versions: "1-12", rule: otherwiseAllow, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				setLevels(r, nil, map[string]any{"events": map[string]any{"m.room.topic": 0}})
				return r.Build(stateEv("m.room.topic", "", bob, map[string]any{"topic": "x"}))
			}},
		{name: "state event in a room without power levels from a non-creator", versions: "1-12", rule: requiredRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, nil)
				r.Join(alice)
				r.Add(stateEv(auth.TypeJoinRules, "", alice, map[string]any{"join_rule": "public"}))
				r.Join(bob)
				return r.Build(stateEv("m.room.name", "", bob, map[string]any{"name": "x"}))
			}},
		{name: "state event in a room without power levels from the creator", versions: "1-12", rule: otherwiseAllow,
			allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, nil)
				r.Join(alice)
				return r.Build(stateEv("m.room.name", "", alice, map[string]any{"name": "x"}))
			}},
		{name: "state_key of another user", versions: "1-12", rule: stateKeyRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(stateEv("m.custom", string(bob), alice, map[string]any{}))
			}},
		{name: "state_key of the sender", versions: "1-12", rule: otherwiseAllow, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				return r.Build(stateEv("m.custom", string(alice), alice, map[string]any{}))
			}},
		{name: "redaction at the redact level", versions: "1-2", rule: "11.1", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				target := r.Add(authtest.Spec{Type: "m.room.message", Sender: bob, Content: map[string]any{}})
				return r.Build(authtest.Spec{Type: auth.TypeRedaction, Sender: alice, Redacts: target.ID, Content: map[string]any{}})
			}},
		{name: "redaction of an event of the sender's server", versions: "1-2", rule: "11.2", allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				target := r.Add(authtest.Spec{Type: "m.room.message", Sender: bob, Content: map[string]any{}})
				return r.Build(authtest.Spec{Type: auth.TypeRedaction, Sender: bob, Redacts: target.ID, Content: map[string]any{}})
			}},
		{name: "redaction of another server's event below the redact level", versions: "1-2", rule: "11.3",
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(authtest.Spec{Type: auth.TypeRedaction, Sender: bob, Redacts: "$e1:a.test", Content: map[string]any{}})
			}},
		{name: "redaction of another server's event below the redact level from v3", versions: "3-12",
			rule: otherwiseAllow, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				return r.Build(authtest.Spec{Type: auth.TypeRedaction, Sender: bob, Redacts: "$e1", Content: map[string]any{"redacts": "$e1"}})
			}},
		{name: "redaction below its events entry", versions: "1-12", rule: requiredRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				r.Join(bob)
				setLevels(r, nil, map[string]any{"events": map[string]any{auth.TypeRedaction: 5}})
				return r.Build(authtest.Spec{Type: auth.TypeRedaction, Sender: bob, Redacts: "$e1", Content: map[string]any{}})
			}},
	})
}
