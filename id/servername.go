package id

import (
	"net/netip"
	"strconv"
	"strings"
)

// ServerName is a homeserver's name: a DNS name, IPv4 address or bracketed
// IPv6 address, with an optional port.
type ServerName string

func (s ServerName) String() string { return string(s) }

// ParseServerName validates s against the spec's server name grammar.
func ParseServerName(s string) (ServerName, error) {
	if s == "" {
		return "", invalid("server name", s, "empty")
	}
	if len(s) > MaxLength {
		return "", invalid("server name", s, "longer than 255 bytes")
	}
	host, port := SplitHostPort(ServerName(s))
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || len(port) > 5 || n < 1 || n > 65535 {
			return "", invalid("server name", s, "bad port")
		}
	}
	switch {
	case strings.HasPrefix(host, "["):
		if !strings.HasSuffix(host, "]") {
			return "", invalid("server name", s, "unterminated IPv6 literal")
		}
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() {
			return "", invalid("server name", s, "bad IPv6 literal")
		}
	default:
		if host == "" {
			return "", invalid("server name", s, "empty host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
			if !ok {
				return "", invalid("server name", s, "host has a forbidden character")
			}
		}
	}
	return ServerName(s), nil
}

// SplitHostPort splits a server name into its host (brackets kept for IPv6)
// and its port, which is "" when the name has none.
func SplitHostPort(s ServerName) (host, port string) {
	str := string(s)
	if strings.HasPrefix(str, "[") {
		end := strings.IndexByte(str, ']')
		if end < 0 {
			return str, ""
		}
		host, rest := str[:end+1], str[end+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		return host, ""
	}
	if i := strings.LastIndexByte(str, ':'); i >= 0 {
		return str[:i], str[i+1:]
	}
	return str, ""
}
