package auth_test

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

func TestServerACL(t *testing.T) {
	const acl = `{"allow":["*", 5],"deny":["evil.com","*.evil.com","b?d.org"],"allow_ip_literals":false}`
	cases := []struct {
		name    string
		content string
		server  id.ServerName
		want    bool
	}{
		{"allow * lets an ordinary server in", acl, "good.org", true},
		{"deny matches exactly, port ignored", acl, "evil.com:8448", false},
		{"deny is case-insensitive", acl, "EVIL.com", false},
		{"deny glob * matches subdomains", acl, "a.b.evil.com", false},
		{"deny glob * does not match the bare suffix", acl, "notevil.com", true},
		{"deny glob ? matches one character", acl, "bad.org", false},
		{"deny glob ? does not match two", acl, "baad.org", true},
		{"IPv4 literal denied when allow_ip_literals is false", acl, "1.2.3.4:80", false},
		{"IPv6 literal denied when allow_ip_literals is false", acl, "[::1]:8448", false},
		{"IP literal allowed when allow_ip_literals is not a boolean", `{"allow":["*"],"allow_ip_literals":"no"}`, "1.2.3.4", true},
		{"missing allow denies everyone", `{"deny":[]}`, "good.org", false},
		{"allow glob with a prefix", `{"allow":["*.example.org"]}`, "matrix.example.org", true},
		{"allow glob with a prefix rejects others", `{"allow":["*.example.org"]}`, "example.com", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := auth.ParseServerACL(json.RawMessage(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Allowed(tc.server); got != tc.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tc.server, got, tc.want)
			}
		})
	}
	t.Run("no ACL event allows every server", func(t *testing.T) {
		r := authtest.NewStandardRoom(authtest.Version("10"), alice, auth.JoinPublic)
		if !auth.ServerAllowed(r.State(), "evil.com") {
			t.Fatal("denied without an ACL")
		}
		r.Add(stateEv(auth.TypeServerACL, "", alice, acl))
		if auth.ServerAllowed(r.State(), "evil.com") {
			t.Fatal("allowed despite the ACL")
		}
	})
}
