package auth_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
	"github.com/parleyhq/parley/rooms/roomversion"
)

var (
	alice = id.UserID("@alice:a.test") // the creator
	bob   = id.UserID("@bob:b.test")
	carol = id.UserID("@carol:c.test")
	dave  = id.UserID("@dave:d.test")
)

// ruleCase is one authorisation rule case: the versions it runs on, the
// rule it exercises as each version numbers it, and whether the event is
// allowed. setup builds the room's state in r and returns the event to
// check (built, not applied).
type ruleCase struct {
	name     string
	versions string // "1-12", "7-12", "3"
	rule     string // "5.2.3" or per version "1-5:5.2.3 6-7:4.2.3 12:5.3.3"
	allow    bool
	setup    func(t *testing.T, r *authtest.Room) auth.Event
	joinRule auth.JoinRule // of the standard room; public when empty
}

// inRange parses "a-b", "a-" or "a" and reports whether v is in it.
func inRange(t *testing.T, spec string, v roomversion.ID) bool {
	t.Helper()
	var n int
	fmt.Sscan(string(v), &n)
	lo, hi, dash := strings.Cut(spec, "-")
	var a, b int
	if _, err := fmt.Sscan(lo, &a); err != nil {
		t.Fatalf("bad version range %q", spec)
	}
	b = a
	if dash {
		b = 12
		if hi != "" {
			if _, err := fmt.Sscan(hi, &b); err != nil {
				t.Fatalf("bad version range %q", spec)
			}
		}
	}
	return n >= a && n <= b
}

// ruleFor returns the rule number spec gives for version v.
func ruleFor(t *testing.T, spec string, v roomversion.ID) string {
	t.Helper()
	if !strings.Contains(spec, ":") {
		return spec
	}
	for _, part := range strings.Fields(spec) {
		vr, rule, _ := strings.Cut(part, ":")
		if inRange(t, vr, v) {
			return rule
		}
	}
	t.Fatalf("rule spec %q has no number for v%s", spec, v)
	return ""
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		ran := false
		for _, rv := range roomversion.All() {
			if !inRange(t, tc.versions, rv.ID) {
				continue
			}
			ran = true
			rule := ruleFor(t, tc.rule, rv.ID)
			verb := "denies"
			if tc.allow {
				verb = "allows"
			}
			name := fmt.Sprintf("v%s/rule %s %s %s", rv.ID, rule, verb, tc.name)
			t.Run(name, func(t *testing.T) {
				jr := tc.joinRule
				if jr == "" {
					jr = auth.JoinPublic
				}
				r := authtest.NewStandardRoom(rv, alice, jr)
				ev := tc.setup(t, r)
				err := auth.Check(rv, ev, r.State())
				assertRule(t, err, tc.allow, rule)
			})
		}
		if !ran {
			t.Errorf("case %q runs on no version", tc.name)
		}
	}
}

// assertRule checks err against the expectation: nil when allowed, a
// RuleError naming rule otherwise.
func assertRule(t *testing.T, err error, allow bool, rule string) {
	t.Helper()
	if allow {
		if err != nil {
			t.Fatalf("want allowed by rule %s, got %v", rule, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want denied by rule %s, got allowed", rule)
	}
	if !errors.Is(err, auth.ErrNotAllowed) || !errors.Is(err, mxerr.Forbidden) {
		t.Fatalf("error %v does not wrap ErrNotAllowed and mxerr.Forbidden", err)
	}
	var re *auth.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RuleError", err)
	}
	if re.Rule != rule {
		t.Fatalf("denied by rule %s (%v), want rule %s", re.Rule, err, rule)
	}
}

// state builds a state event spec.
func stateEv(typ, key string, sender id.UserID, content any) authtest.Spec {
	return authtest.Spec{Type: typ, StateKey: authtest.SK(key), Sender: sender, Content: content}
}

func memberEv(sender, target id.UserID, content any) authtest.Spec {
	return stateEv(auth.TypeMember, string(target), sender, content)
}

func membership(m auth.Membership) map[string]any { return map[string]any{"membership": string(m)} }

// setLevels has the creator send power levels giving users their levels
// (the creator keeps 100 before v12; in v12 creators need no entry).
func setLevels(r *authtest.Room, users map[id.UserID]int, extra map[string]any) {
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
	r.Add(stateEv(auth.TypePowerLevels, "", alice, content))
}

func message(r *authtest.Room, sender id.UserID) auth.Event {
	return r.Build(authtest.Spec{Type: "m.room.message", Sender: sender, Content: map[string]any{"body": "hi"}})
}
