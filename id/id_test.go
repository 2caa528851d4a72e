package id

import (
	"errors"
	"strings"
	"testing"
)

func TestParseUserID(t *testing.T) {
	cases := []struct {
		in        string
		ok        bool
		localpart string
		server    ServerName
	}{
		{"@alice:example.org", true, "alice", "example.org"},
		{"@alice:example.org:8448", true, "alice", "example.org:8448"},
		{"@Historic+Name!:[::1]:80", true, "Historic+Name!", "[::1]:80"},
		{"@alice:1.2.3.4", true, "alice", "1.2.3.4"},
		{"alice:example.org", false, "", ""},
		{"@:example.org", false, "", ""},
		{"@alice", false, "", ""},
		{"@al ice:example.org", false, "", ""},
		{"@alice:exa mple.org", false, "", ""},
		{"@alice:example.org:99999", false, "", ""},
		{"@alice:[::1", false, "", ""},
		{"@" + strings.Repeat("a", 250) + ":example.org", false, "", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			u, err := ParseUserID(c.in)
			if c.ok != (err == nil) {
				t.Fatalf("ParseUserID(%q) error = %v, want ok=%v", c.in, err, c.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				return
			}
			if u.Localpart() != c.localpart || u.Server() != c.server {
				t.Errorf("got %q / %q", u.Localpart(), u.Server())
			}
		})
	}
}

func TestValidNewLocalpart(t *testing.T) {
	for in, want := range map[string]bool{
		"alice": true, "a.b_c=d-e/f+g": true, "bob99": true,
		"": false, "Alice": false, "al ice": false, "ümlaut": false, "a:b": false,
	} {
		if got := ValidNewLocalpart(in); got != want {
			t.Errorf("ValidNewLocalpart(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseRoomAndEventIDs(t *testing.T) {
	rooms := map[string]bool{
		"!abc:example.org":         true,
		"!ünïcode\x01:example.org": true, // v1–11 localparts are any non-NUL code point
		"!aGVsbG8td29ybGQ":         true, // v12: no server name
		"!":                        false,
		"$abc:example.org":         false,
		"!abc:bad host":            false,
		"!a\x00b:example.org":      false,
		"!\xff:example.org":        false,
	}
	for in, want := range rooms {
		if _, err := ParseRoomID(in); (err == nil) != want {
			t.Errorf("ParseRoomID(%q) error = %v, want ok=%v", in, err, want)
		}
	}
	events := map[string]bool{
		"$abc:example.org": true,
		"$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg": true,
		"$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk": true,
		"abc": false,
		"$":   false,
	}
	for in, want := range events {
		if _, err := ParseEventID(in); (err == nil) != want {
			t.Errorf("ParseEventID(%q) error = %v, want ok=%v", in, err, want)
		}
	}
	if got := RoomID("!abc:example.org").Server(); got != "example.org" {
		t.Errorf("Server() = %q", got)
	}
	if got := RoomID("!aGVsbG8").Server(); got != "" {
		t.Errorf("v12 room id Server() = %q, want empty", got)
	}
}

func TestParseRoomAlias(t *testing.T) {
	a, err := ParseRoomAlias("#room:example.org")
	if err != nil || a.Localpart() != "room" || a.Server() != "example.org" {
		t.Fatalf("got %v %v", a, err)
	}
	for _, bad := range []string{"room:example.org", "#:example.org", "#room", "#room:"} {
		if _, err := ParseRoomAlias(bad); err == nil {
			t.Errorf("ParseRoomAlias(%q) accepted", bad)
		}
	}
}

func TestServerNames(t *testing.T) {
	cases := map[string]bool{
		"example.org": true, "example.org:8448": true, "1.2.3.4": true, "1.2.3.4:1": true,
		"[1234:5678::abcd]": true, "[1234:5678::abcd]:5678": true, "localhost": true,
		"": false, "example.org:": false, "example.org:0": false, "example.org:65536": false,
		"[1.2.3.4]": false, "[::1": false, "exa_mple.org": false, "example.org:12a": false,
	}
	for in, want := range cases {
		if _, err := ParseServerName(in); (err == nil) != want {
			t.Errorf("ParseServerName(%q) error = %v, want ok=%v", in, err, want)
		}
	}
	host, port := SplitHostPort("[::1]:8448")
	if host != "[::1]" || port != "8448" {
		t.Errorf("SplitHostPort = %q %q", host, port)
	}
}

func FuzzParseUserID(f *testing.F) {
	for _, seed := range []string{"@alice:example.org", "@a:[::1]:80", "@:x", "@x:y:z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUserID(s)
		if err != nil {
			return
		}
		if NewUserID(u.Localpart(), u.Server()) != u {
			t.Fatalf("%q does not rebuild from its parts", s)
		}
		if len(s) > MaxLength {
			t.Fatalf("accepted %d bytes", len(s))
		}
	})
}
