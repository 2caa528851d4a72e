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
