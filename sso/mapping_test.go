package sso

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestMapLocalpart(t *testing.T) {
	for in, want := range map[string]string{
		"alice":         "alice",
		"Alice.Smith":   "alice.smith",
		"bob@corp.com":  "bob=40corp.com",
		"zoë":           "zo=c3=ab",
		"a=b":           "a=3db",
		"x y":           "x=20y",
		"under_score-1": "under_score-1",
		"":              "",
	} {
		if got := MapLocalpart(in); got != want {
			t.Errorf("MapLocalpart(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMappingFuncs(t *testing.T) {
	m, err := newMapping("sub", "{{.email | localpart}}", "{{.name | lower}}")
	if err != nil {
		t.Fatal(err)
	}
	_, lp, dn, ok := m.apply(jwt.MapClaims{"sub": "s", "email": "Bob.Smith@corp.example", "name": "Bob SMITH"})
	if !ok || lp != "bob.smith" || dn != "bob smith" {
		t.Fatalf("%q %q %v", lp, dn, ok)
	}
	// A missing claim through a function is no claim at all.
	_, lp, _, _ = m.apply(jwt.MapClaims{"sub": "S-1"})
	if lp != "s-1" {
		t.Fatalf("fallback %q", lp)
	}
}

func TestMappingRequirements(t *testing.T) {
	m := &mapping{required: [][2]string{{"groups", "matrix"}, {"email_verified", "true"}}}
	for _, c := range []struct {
		claims jwt.MapClaims
		want   bool
	}{
		{jwt.MapClaims{"groups": []any{"staff", "matrix"}, "email_verified": true}, true},
		{jwt.MapClaims{"groups": "matrix", "email_verified": "true"}, true},
		{jwt.MapClaims{"groups": []any{"staff"}, "email_verified": true}, false},
		{jwt.MapClaims{"groups": []any{"matrix"}, "email_verified": false}, false},
		{jwt.MapClaims{"email_verified": true}, false},
	} {
		if got := m.allowed(c.claims); got != c.want {
			t.Errorf("allowed(%v) = %v", c.claims, got)
		}
	}
}

func TestMappingApply(t *testing.T) {
	m, err := newMapping("sub", "{{.preferred_username}}", "{{.given_name}} {{.family_name}}")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                    string
		claims                  jwt.MapClaims
		sub, localpart, display string
		ok                      bool
	}{
		{"full", jwt.MapClaims{"sub": "u-1", "preferred_username": "Alice", "given_name": "Alice", "family_name": "Liddell"}, "u-1", "alice", "Alice Liddell", true},
		{"no username: the subject", jwt.MapClaims{"sub": "U-2"}, "U-2", "u-2", "", true},
		{"numeric subject", jwt.MapClaims{"sub": float64(42), "preferred_username": "n"}, "42", "n", "", true},
		{"no subject", jwt.MapClaims{"preferred_username": "x"}, "", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sub, lp, dn, ok := m.apply(c.claims)
			if sub != c.sub || lp != c.localpart || dn != c.display || ok != c.ok {
				t.Fatalf("apply = %q %q %q %v", sub, lp, dn, ok)
			}
		})
	}
}
