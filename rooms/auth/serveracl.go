package auth

import (
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/parleyhq/parley/id"
)

// ServerACL is the content of m.room.server_acl (client-server API,
// "Server Access Control Lists"). The rules do not apply it; the
// federation layer checks requests against it, with ServerAllowed.
type ServerACL struct {
	Allow           []string
	Deny            []string
	AllowIPLiterals bool
}

// ParseServerACL reads a server ACL content. Following the spec's
// defaults, a missing allow or deny is an empty list, and allow_ip_literals
// is true when missing "or otherwise not a boolean"; list entries that are
// not strings are ignored.
func ParseServerACL(content json.RawMessage) (*ServerACL, error) {
	acl := &ServerACL{AllowIPLiterals: true}
	err := eachMember(content, func(key, value []byte) error {
		switch string(key) {
		case "allow":
			acl.Allow = stringList(value)
		case "deny":
			acl.Deny = stringList(value)
		case "allow_ip_literals":
			acl.AllowIPLiterals = string(value) != "false"
		}
		return nil
	})
	if err != nil {
		return nil, errNotObject
	}
	return acl, nil
}

func stringList(raw []byte) []string {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		if s, ok := stringValue(item); ok {
			out = append(out, s)
		}
	}
	return out
}

// Allowed applies the ACL to a server name, in the spec's order: IP
// literals when allow_ip_literals is false, then deny, then allow, then
// deny by default. The port is never considered.
func (a *ServerACL) Allowed(server id.ServerName) bool {
	host, _ := id.SplitHostPort(server)
	if !a.AllowIPLiterals && isIPLiteral(host) {
		return false
	}
	host = strings.ToLower(host)
	for _, g := range a.Deny {
		if globMatch(strings.ToLower(g), host) {
			return false
		}
	}
	for _, g := range a.Allow {
		if globMatch(strings.ToLower(g), host) {
			return true
		}
	}
	return false
}

// ServerAllowed reports whether server may take part in the room whose
// state is given: allowed when the room has no server ACL (rule 1); a
// malformed ACL content allows nothing.
func ServerAllowed(state State, server id.ServerName) bool {
	ev := state.StateEvent(TypeServerACL, "")
	if ev == nil {
		return true
	}
	acl, err := ParseServerACL(ev.Content())
	if err != nil {
		return false
	}
	return acl.Allowed(server)
}

func isIPLiteral(host string) bool {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// globMatch is the spec's glob (appendices, "Glob-style matching"): '*'
// matches zero or more characters, '?' exactly one; everything else is
// literal. It backtracks only to the last '*', so it runs in
// O(len(pattern)·len(s)).
func globMatch(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
