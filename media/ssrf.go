package media

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// blockedAddrError is returned by the preview dialer for an address it
// refuses.
type blockedAddrError struct{ addr netip.Addr }

func (e *blockedAddrError) Error() string {
	return fmt.Sprintf("address %s is not public", e.addr)
}

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

// publicAddress reports whether a is a public unicast address: not
// loopback, private, link-local, multicast or unspecified, nor in one of
// the nonPublic ranges.
func publicAddress(a netip.Addr) bool {
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

// guardedClient is the HTTP client of URL previews. The address check runs
// in the dialer, on the address actually connected to after name
// resolution — so a name that resolves to 127.0.0.1, a DNS answer that
// changes between check and use, and every redirect hop are all covered.
// Proxies from the environment are ignored: they would connect for us.
func guardedClient(allow func(netip.Addr) bool, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				return &blockedAddrError{}
			}
			if !allow(a.Unmap()) {
				return &blockedAddrError{addr: a.Unmap()}
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           10,
		IdleConnTimeout:        30 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return &blockedAddrError{}
			}
			return nil
		},
	}
}

// isBlocked reports whether err is the dialer's (or redirect check's)
// refusal.
func isBlocked(err error) bool {
	var b *blockedAddrError
	return errors.As(err, &b)
}
