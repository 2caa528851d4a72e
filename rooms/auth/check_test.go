package auth_test

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

func TestRuleErrorMessage(t *testing.T) {
	rv := authtest.Version("8")
	r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
	r.Member(alice, bob, auth.Ban)
	err := auth.Check(rv, r.Build(memberEv(bob, bob, membership(auth.Join))), r.State())
	const want = "rule 4.3.3: sender is banned"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	m, ok := mxerr.As(err)
	if !ok || m.Code != "M_FORBIDDEN" || m.Message != want {
		t.Fatalf("Matrix error %+v, want M_FORBIDDEN with %q", m, want)
	}
}

// Room versions 1 and 2 let the sender choose event ids, so two different
// power levels events may claim one id; the parse cache must not mix them.
func TestCheckDoesNotConfuseEventsSharingAnID(t *testing.T) {
	rv := authtest.Version("1")
	r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
	r.Join(bob)
	msg := message(r, bob)
	base := r.State()
	strict := &authtest.Event{ID: "$pl:a.test", Room: r.ID, EvType: auth.TypePowerLevels, Key: authtest.SK(""), From: alice,
		Body: json.RawMessage(`{"events_default":10,"users":{"@alice:a.test":100}}`)}
	lax := &authtest.Event{ID: "$pl:a.test", Room: r.ID, EvType: auth.TypePowerLevels, Key: authtest.SK(""), From: alice,
		Body: json.RawMessage(`{"events_default":0,"users":{"@alice:a.test":100}}`)}
	cases := []struct {
		name  string
		pl    auth.Event
		allow bool
	}{
		{"v1/rule 8 denies a message under the strict levels", strict, false},
		{"v1/rule 12 allows a message under the lax levels with the same id", lax, true},
		{"v1/rule 8 denies a message under the strict levels again", strict, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rule := "8"
			if tc.allow {
				rule = "12"
			}
			assertRule(t, auth.Check(rv, msg, base.With(tc.pl)), tc.allow, rule)
		})
	}
}

// A power levels event no rule should have let in (a server that
// validated less) must not make every later event of the room fail: its
// bad entries count as absent.
func TestMalformedPowerLevelsInState(t *testing.T) {
	for _, v := range []string{"5", "10"} {
		rv := authtest.Version(v)
		r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
		r.Join(bob)
		bad := &authtest.Event{ID: "$badpl", Room: r.ID, EvType: auth.TypePowerLevels, Key: authtest.SK(""), From: alice,
			Body: json.RawMessage(`{"users":{"@alice:a.test":100,"not-a-user":5,"@bob:b.test":"x"},"events_default":"7","ban":"x"}`)}
		state := r.State().With(bad)
		// "7" is a valid level before v10 only: it denies bob's message in
		// v5; in v10 it is ignored and the message is allowed.
		rule, allow := map[string]string{"5": "8", "10": "10"}[v], v == "10"
		t.Run("v"+v+"/rule "+rule+" reads events_default \"7\" as the version allows", func(t *testing.T) {
			assertRule(t, auth.Check(rv, message(r, bob), state), allow, rule)
		})
		t.Run("v"+v+"/bad entries of state power levels count as absent", func(t *testing.T) {
			pl, err := auth.LoadPowerLevels(rv, state)
			if err != nil {
				t.Fatal(err)
			}
			wantEvents := map[string]int64{"5": 7, "10": 0}[v]
			if pl.UserLevel(bob) != 0 || pl.Ban != 50 || pl.EventsDefault != wantEvents || pl.UserLevel(alice) != 100 {
				t.Fatalf("levels bob=%d ban=%d events_default=%d alice=%d", pl.UserLevel(bob), pl.Ban, pl.EventsDefault, pl.UserLevel(alice))
			}
		})
	}
}
