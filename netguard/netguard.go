// Package netguard says which IP addresses outbound requests may reach.
// Every client of Parley that connects to an address chosen by someone
// else (URL previews, identity providers, other homeservers) refuses the
// addresses that are not on the public internet unless its configuration
// allows them, and checks in the dialer, on the address actually
// connected to after name resolution. It imports nothing of Parley.
package netguard

import "net/netip"

// nonPublic lists ranges that are not reachable on the public internet
// beyond what netip's predicates cover: shared address space (CGNAT),
// IETF protocol assignments, benchmarking, reserved, documentation, and
// NAT64 (which maps to IPv4 addresses, private ones included).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
}

// Public reports whether a is a public unicast address: not loopback,
// private, link-local, multicast, unspecified or broadcast, nor in one of
// the nonPublic ranges. IPv4-mapped IPv6 addresses are judged as IPv4.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
