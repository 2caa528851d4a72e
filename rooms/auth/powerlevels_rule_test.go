package auth_test

import (
	"fmt"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

// Power level rule numbers per version: v10 inserts two checks, v12 one more.
const (
	plUsersRule    = "1-5:10.1 6-9:9.1 10-11:9.3 12:10.3"
	plIntRule      = "10-11:9.1 12:10.1"
	plMapsRule     = "10-11:9.2 12:10.2"
	plCreatorsRule = "12:10.4"
	plNoPrevRule   = "1-5:10.2 6-9:9.2 10-11:9.4 12:10.5"
	plEventsOld    = "1-5:10.4.1 6-9:9.4.1 10-11:9.6.1 12:10.7.1"
	plEventsNew    = "1-5:10.5.1 6-9:9.5.1 10-11:9.7.1 12:10.8.1"
	plUsersOld     = "1-5:10.6.1 6-9:9.6.1 10-11:9.8.1 12:10.9.1"
	plUsersNew     = "1-5:10.7.1 6-9:9.7.1 10-11:9.9.1 12:10.10.1"
	plAllow        = "1-5:10.8 6-9:9.8 10-11:9.10 12:10.11"
)

func plAlterRule(k int) string {
	return fmt.Sprintf("1-5:10.3.%[1]d 6-9:9.3.%[1]d 10-11:9.5.%[1]d 12:10.6.%[1]d", k)
}

// levelsContent is the content setLevels sends, for building changes.
func levelsContent(r *authtest.Room, users map[id.UserID]any, extra map[string]any) map[string]any {
	u := map[string]any{}
	if !r.Version.CreateEventDefinesRoomID {
		u[string(alice)] = 100
	}
	for k, v := range users {
		u[string(k)] = v
	}
	content := map[string]any{"users": u}
	for k, v := range extra {
		content[k] = v
	}
	return content
}

// modRoom has bob (50) and carol (50) joined; extra goes into the levels.
func modRoom(r *authtest.Room, extra map[string]any) {
	r.Join(bob)
	r.Join(carol)
	setLevels(r, map[id.UserID]int{bob: 50, carol: 50}, extra)
}

func TestPowerLevelsRules(t *testing.T) {
	mods := map[id.UserID]any{bob: 50, carol: 50}
	byBob := func(extra map[string]any, users map[id.UserID]any) func(*testing.T, *authtest.Room) auth.Event {
		return func(_ *testing.T, r *authtest.Room) auth.Event {
			if users == nil {
				users = mods
			}
			return r.Build(stateEv(auth.TypePowerLevels, "", bob, levelsContent(r, users, extra)))
		}
	}
	byAlice := func(content string) func(*testing.T, *authtest.Room) auth.Event {
		return func(_ *testing.T, r *authtest.Room) auth.Event {
			return r.Build(stateEv(auth.TypePowerLevels, "", alice, content))
		}
	}
	// withMods sets up modRoom with extra, then runs next.
	withMods := func(extra map[string]any, next func(*testing.T, *authtest.Room) auth.Event) func(*testing.T, *authtest.Room) auth.Event {
		return func(t *testing.T, r *authtest.Room) auth.Event {
			modRoom(r, extra)
			return next(t, r)
		}
	}
	runRuleCases(t, []ruleCase{
		{name: "users with a key that is not a user id", versions: "1-12", rule: plUsersRule,
			setup: byAlice(`{"users":{"bob":50}}`)},
		{name: "users not an object", versions: "1-12", rule: plUsersRule,
			setup: byAlice(`{"users":[]}`)},
		{name: "users value as a string before v10", versions: "1-9", rule: plAllow, allow: true,
			setup: byAlice(`{"users":{"@alice:a.test":100,"@bob:b.test":" +050 "}}`)},
		{name: "users value as a string from v10", versions: "10-11", rule: plUsersRule,
			setup: byAlice(`{"users":{"@alice:a.test":100,"@bob:b.test":"50"}}`)},
		{name: "users value as a float in v1-5", versions: "1-5", rule: plAllow, allow: true,
			setup: byAlice(`{"users":{"@alice:a.test":100,"@bob:b.test":50.57}}`)},
		{name: "users value as a float from v6", versions: "6-11", rule: plUsersRule,
			setup: byAlice(`{"users":{"@alice:a.test":100,"@bob:b.test":50.5}}`)},
		{name: "users value as a float beyond a double", versions: "1-5", rule: plUsersRule,
			setup: byAlice(`{"users":{"@alice:a.test":100,"@bob:b.test":1e400}}`)},
		{name: "ban as a string before v10", versions: "1-9", rule: plAllow, allow: true,
			setup: byAlice(`{"ban":"50","users":{"@alice:a.test":100}}`)},
		{name: "integer values from v10", versions: "10-12", rule: plIntRule, allow: true,
			setup: byAlice(`{"ban":50,"events":{"m.room.name":50},"notifications":{"room":50},"users":{"@bob:b.test":-1}}`)},
		{name: "users not listing any creator", versions: "12", rule: plCreatorsRule, allow: true,
			setup: byAlice(`{"users":{"@bob:b.test":100}}`)},
		{name: "ban as a string from v10", versions: "10-12", rule: plIntRule,
			setup: byAlice(`{"ban":"50","users":{}}`)},
		{name: "state_default as a float from v10", versions: "10-12", rule: plIntRule,
			setup: byAlice(`{"state_default":50.0,"users":{}}`)},
		{name: "events value as a string from v10", versions: "10-12", rule: plMapsRule,
			setup: byAlice(`{"events":{"m.room.name":"50"},"users":{}}`)},
		{name: "notifications not an object from v10", versions: "10-12", rule: plMapsRule,
			setup: byAlice(`{"notifications":5,"users":{}}`)},
		{name: "users listing the creator", versions: "12", rule: plCreatorsRule,
			setup: byAlice(`{"users":{"@alice:a.test":100}}`)},
		{name: "users listing an additional creator", versions: "12", rule: plCreatorsRule,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, map[string]any{"additional_creators": []string{string(bob)}})
				r.Join(alice)
				return r.Build(stateEv(auth.TypePowerLevels, "", alice, `{"users":{"@bob:b.test":100}}`))
			}},
		{name: "first power levels event", versions: "1-12", rule: plNoPrevRule, allow: true,
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				*r = *authtest.NewRoom(r.Version, alice, nil)
				r.Join(alice)
				return r.Build(stateEv(auth.TypePowerLevels, "", alice, levelsContent(r, nil, map[string]any{"ban": 1000})))
			}},
		{name: "raising ban above the sender's level", versions: "1-12", rule: plAlterRule(2),
			setup: withMods(nil, byBob(map[string]any{"ban": 60}, nil))},
		{name: "lowering kick within the sender's level", versions: "1-12", rule: plAllow, allow: true,
			setup: withMods(nil, byBob(map[string]any{"kick": 40}, nil))},
		{name: "changing state_default that is above the sender's level", versions: "1-12", rule: plAlterRule(1),
			setup: withMods(map[string]any{"state_default": 40, "invite": 70}, byBob(map[string]any{"state_default": 40}, nil))},
		{name: "removing redact that is above the sender's level", versions: "1-12", rule: plAlterRule(1),
			setup: withMods(map[string]any{"redact": 70, "state_default": 0}, byBob(map[string]any{"state_default": 0}, nil))},
		{name: "changing an events entry above the sender's level", versions: "1-12", rule: plEventsOld,
			setup: withMods(map[string]any{"events": map[string]any{"m.room.name": 70}},
				byBob(map[string]any{"events": map[string]any{"m.room.name": 40}}, nil))},
		{name: "adding an events entry above the sender's level", versions: "1-12", rule: plEventsNew,
			setup: withMods(nil, byBob(map[string]any{"events": map[string]any{"m.x": 60}}, nil))},
		{name: "adding an events entry at the sender's level", versions: "1-12", rule: plAllow, allow: true,
			setup: withMods(nil, byBob(map[string]any{"events": map[string]any{"m.x": 50}}, nil))},
		{name: "adding a notifications entry above the sender's level", versions: "6-12", rule: plEventsNew,
			setup: withMods(nil, byBob(map[string]any{"notifications": map[string]any{"room": 60}}, nil))},
		{name: "removing a notifications entry above the sender's level", versions: "6-12", rule: plEventsOld,
			setup: withMods(map[string]any{"notifications": map[string]any{"room": 60}}, byBob(nil, nil))},
		{name: "notifications entries before v6 are not checked", versions: "1-5", rule: plAllow, allow: true,
			setup: withMods(nil, byBob(map[string]any{"notifications": map[string]any{"room": 60}}, nil))},
		{name: "demoting a user at the sender's level", versions: "1-12", rule: plUsersOld,
			setup: withMods(nil, byBob(nil, map[id.UserID]any{bob: 50, carol: 10}))},
		{name: "removing a user at the sender's level", versions: "1-12", rule: plUsersOld,
			setup: withMods(nil, byBob(nil, map[id.UserID]any{bob: 50}))},
		{name: "demoting oneself", versions: "1-12", rule: plAllow, allow: true,
			setup: withMods(nil, byBob(nil, map[id.UserID]any{bob: 10, carol: 50}))},
		{name: "promoting a user above the sender's level", versions: "1-12", rule: plUsersNew,
			setup: withMods(nil, byBob(nil, map[id.UserID]any{bob: 50, carol: 50, dave: 51}))},
		{name: "promoting a user to the sender's level", versions: "1-12", rule: plAllow, allow: true,
			setup: withMods(nil, byBob(nil, map[id.UserID]any{bob: 50, carol: 50, dave: 50}))},
		{name: "string and integer of the same level are no change", versions: "1-9", rule: plAllow, allow: true,
			setup: withMods(map[string]any{"ban": 70}, byBob(map[string]any{"ban": "70"}, nil))},
	})
}

func TestCreatorsV12(t *testing.T) {
	rv := authtest.Version("12")
	r := authtest.NewRoom(rv, alice, map[string]any{"additional_creators": []string{string(bob)}})
	r.Join(alice)
	r.Add(stateEv(auth.TypePowerLevels, "", alice, map[string]any{"users": map[string]any{string(carol): 1000000}}))
	r.Add(stateEv(auth.TypeJoinRules, "", alice, map[string]any{"join_rule": "public"}))
	r.Join(bob)
	r.Join(carol)
	cases := []struct {
		name  string
		ev    auth.Event
		allow bool
		rule  string
	}{
		{"v12/rule 5.5.4 allows an additional creator to kick a user with a huge level",
			r.Build(memberEv(bob, carol, membership(auth.Leave))), true, ""},
		{"v12/rule 5.5.5 denies a user with a huge level kicking a creator",
			r.Build(memberEv(carol, bob, membership(auth.Leave))), false, "5.5.5"},
		{"v12/rule 5.6.3 denies a creator banning another creator",
			r.Build(memberEv(alice, bob, membership(auth.Ban))), false, "5.6.3"},
		{"v12/rule 10.11 allows a creator any level change",
			r.Build(stateEv(auth.TypePowerLevels, "", bob, map[string]any{"ban": 1 << 50, "users": map[string]any{string(carol): 0}})), true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertRule(t, auth.Check(rv, tc.ev, r.State()), tc.allow, tc.rule)
		})
	}
	pl, err := auth.LoadPowerLevels(rv, r.State())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []id.UserID{alice, bob} {
		if got := pl.UserLevel(u); got != auth.CreatorLevel {
			t.Errorf("UserLevel(%s) = %d, want CreatorLevel", u, got)
		}
	}
	if got := pl.UserLevel(carol); got != 1000000 {
		t.Errorf("UserLevel(carol) = %d, want 1000000", got)
	}
}
