package auth_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
	"github.com/parleyhq/parley/rooms/roomversion"
)

func authEventsRule(k string) string { return fmt.Sprintf("1-11:2.%[1]s 12:3.%[1]s", k) }

func TestCheckAuthEvents(t *testing.T) {
	type built struct {
		ev   auth.Event
		auth []auth.Event
	}
	// msg builds bob's message with the given auth event ids.
	msg := func(r *authtest.Room, ids ...id.EventID) auth.Event {
		return r.Build(authtest.Spec{Type: "m.room.message", Sender: bob, Content: map[string]any{"body": "x"}, Auth: ids})
	}
	ids := func(r *authtest.Room, keys ...auth.StateKey) []id.EventID {
		var out []id.EventID
		for _, k := range keys {
			out = append(out, r.State().StateEvent(k.Type, k.StateKey).EventID())
		}
		return out
	}
	create := auth.StateKey{Type: auth.TypeCreate}
	pl := auth.StateKey{Type: auth.TypePowerLevels}
	bobMember := auth.StateKey{Type: auth.TypeMember, StateKey: string(bob)}
	jr := auth.StateKey{Type: auth.TypeJoinRules}
	cases := []struct {
		name     string
		versions string
		rule     string
		allow    bool
		setup    func(r *authtest.Room) built
	}{
		{name: "auth events as selected", versions: "1-12", rule: otherwiseAllow, allow: true,
			setup: func(r *authtest.Room) built {
				ev := message(r, bob)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "a join citing join rules", versions: "1-12", rule: joinPublicRule, allow: true,
			setup: func(r *authtest.Room) built {
				ev := r.Build(memberEv(dave, dave, membership(auth.Join)))
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "duplicate auth events for one state key", versions: "1-12", rule: authEventsRule("1"),
			setup: func(r *authtest.Room) built {
				old := r.State().StateEvent(auth.TypeMember, string(bob))
				r.Add(memberEv(bob, bob, map[string]any{"membership": "join", "displayname": "B"}))
				ev := msg(r, append(ids(r, pl, bobMember), old.EventID())...)
				if !r.Version.CreateEventDefinesRoomID {
					ev.(*authtest.Event).Auth = append(ev.AuthEventIDs(), ids(r, create)...)
				}
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "a message citing join rules", versions: "1-12", rule: authEventsRule("2"),
			setup: func(r *authtest.Room) built {
				keys := []auth.StateKey{pl, bobMember, jr}
				if !r.Version.CreateEventDefinesRoomID {
					keys = append(keys, create)
				}
				ev := msg(r, ids(r, keys...)...)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "an auth event that is not a state event", versions: "1-12", rule: authEventsRule("2"),
			setup: func(r *authtest.Room) built {
				m := r.Add(authtest.Spec{Type: "m.room.message", Sender: alice, Content: map[string]any{}})
				ev := message(r, bob).(*authtest.Event)
				ev.Auth = append(ev.Auth, m.ID)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "the create event listed", versions: "12", rule: "3.2",
			setup: func(r *authtest.Room) built {
				ev := msg(r, ids(r, create, pl, bobMember)...)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "a rejected auth event", versions: "1-12", rule: authEventsRule("3"),
			setup: func(r *authtest.Room) built {
				ev := message(r, bob)
				evs := r.AuthEvents(ev)
				for i, a := range evs {
					if a.Type() == auth.TypePowerLevels {
						c := *a.(*authtest.Event)
						c.IsRejected = true
						evs[i] = &c
					}
				}
				return built{ev, evs}
			}},
		{name: "no create event among the auth events", versions: "1-11", rule: "2.4",
			setup: func(r *authtest.Room) built {
				ev := msg(r, ids(r, pl, bobMember)...)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "an auth event of another room", versions: "1-12", rule: authEventsRule("5"),
			setup: func(r *authtest.Room) built {
				ev := message(r, bob)
				evs := r.AuthEvents(ev)
				for i, a := range evs {
					if a.Type() == auth.TypePowerLevels {
						c := *a.(*authtest.Event)
						c.Room = "!elsewhere:z.test"
						evs[i] = &c
					}
				}
				return built{ev, evs}
			}},
		{name: "a message whose auth events show the sender left", versions: "1-12", rule: joinedRule,
			setup: func(r *authtest.Room) built {
				r.Add(memberEv(bob, bob, membership(auth.Leave)))
				ev := message(r, bob)
				return built{ev, r.AuthEvents(ev)}
			}},
		{name: "a v12 event without its create event supplied", versions: "12", rule: "2",
			setup: func(r *authtest.Room) built {
				ev := message(r, bob)
				return built{ev, r.AuthEvents(ev)[1:]}
			}},
	}
	for _, tc := range cases {
		for _, rv := range roomversion.All() {
			if !inRange(t, tc.versions, rv.ID) {
				continue
			}
			rule := ruleFor(t, tc.rule, rv.ID)
			verb := map[bool]string{true: "allows", false: "denies"}[tc.allow]
			t.Run(fmt.Sprintf("v%s/rule %s %s %s", rv.ID, rule, verb, tc.name), func(t *testing.T) {
				r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
				r.Join(bob)
				b := tc.setup(r)
				assertRule(t, auth.CheckAuthEvents(rv, b.ev, b.auth), tc.allow, rule)
			})
		}
	}
}

func TestCheckAuthEventsMissing(t *testing.T) {
	for _, rv := range roomversion.All() {
		t.Run("v"+string(rv.ID)+"/missing auth event is reported, not rejected", func(t *testing.T) {
			r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
			ev := message(r, alice)
			evs := r.AuthEvents(ev)
			evs = slices.DeleteFunc(evs, func(e auth.Event) bool { return e.Type() == auth.TypePowerLevels })
			err := auth.CheckAuthEvents(rv, ev, evs)
			if !errors.Is(err, auth.ErrMissingAuthEvent) || errors.Is(err, auth.ErrNotAllowed) {
				t.Fatalf("got %v, want ErrMissingAuthEvent only", err)
			}
		})
	}
}

func TestAuthEventKeys(t *testing.T) {
	rv8, rv12 := authtest.Version("8"), authtest.Version("12")
	r := authtest.NewStandardRoom(rv8, alice, auth.JoinRestricted)
	join := r.Build(memberEv(bob, bob, map[string]any{"membership": "join", "join_authorised_via_users_server": string(alice)}))
	tpi := r.Build(memberEv(alice, bob, map[string]any{"membership": "invite",
		"third_party_invite": map[string]any{"signed": map[string]any{"mxid": string(bob), "token": "tok"}}}))
	cases := []struct {
		name string
		rv   roomversion.Version
		ev   auth.Event
		want []auth.StateKey
	}{
		{"message selects create, power levels and the sender", rv8, message(r, alice), []auth.StateKey{
			{Type: auth.TypeCreate}, {Type: auth.TypePowerLevels}, {Type: auth.TypeMember, StateKey: string(alice)}}},
		{"message in v12 does not select create", rv12, message(r, alice), []auth.StateKey{
			{Type: auth.TypePowerLevels}, {Type: auth.TypeMember, StateKey: string(alice)}}},
		{"restricted join selects join rules and the authorising member", rv8, join, []auth.StateKey{
			{Type: auth.TypeCreate}, {Type: auth.TypePowerLevels}, {Type: auth.TypeMember, StateKey: string(bob)},
			{Type: auth.TypeJoinRules}, {Type: auth.TypeMember, StateKey: string(alice)}}},
		{"third-party invite selects the invite by token", rv8, tpi, []auth.StateKey{
			{Type: auth.TypeCreate}, {Type: auth.TypePowerLevels}, {Type: auth.TypeMember, StateKey: string(alice)},
			{Type: auth.TypeMember, StateKey: string(bob)}, {Type: auth.TypeJoinRules},
			{Type: auth.TypeThirdPartyInvite, StateKey: "tok"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := auth.AuthEventKeys(tc.rv, tc.ev); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
