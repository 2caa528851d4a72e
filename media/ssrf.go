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
