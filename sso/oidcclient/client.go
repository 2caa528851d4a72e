// Package oidcclient is the HTTP client single sign-on uses to reach
// identity providers (discovery documents, JWKS, token endpoints): it
// implements sso.Fetcher. Like URL previews, it refuses loopback, private
// and link-local addresses unless auth.allow_private_addresses is set; the
// check runs in the dialer on the address actually connected to, so DNS
// answers and redirects cannot get around it.
package oidcclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/netguard"
	"github.com/parleyhq/parley/sso"
)

var _ sso.Fetcher = (*Client)(nil)

// maxBody bounds what a provider may send back.
const maxBody = 1 << 20

// Client fetches from identity providers.
type Client struct {
	http *http.Client
}

// ErrBlocked: the address is not public and private addresses are not
// allowed.
var ErrBlocked = errors.New("oidcclient: address is not public")

// New returns a client; allowPrivate lets it reach non-public addresses.
func New(allowPrivate bool, timeout time.Duration) *Client {
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			if allowPrivate {
				return nil
			}
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil || !netguard.Public(a) {
				return fmt.Errorf("%w: %s", ErrBlocked, host)
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          10,
		IdleConnTimeout:       60 * time.Second,
	}
	return &Client{http: &http.Client{Transport: transport, Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
				return fmt.Errorf("redirect to %s refused", req.URL.Scheme)
			}
			return nil
		}}}
}

// Get implements sso.Fetcher.
func (c *Client) Get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	return c.do(req)
}

// GetBearer implements sso.Fetcher.
func (c *Client) GetBearer(ctx context.Context, u, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return c.do(req)
}

// PostForm implements sso.Fetcher.
func (c *Client) PostForm(ctx context.Context, u string, form url.Values, user, password string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	return c.do(req)
}

func (c *Client) do(req *http.Request) ([]byte, error) {
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL.Redacted(), err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", req.URL.Redacted(), maxBody)
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: status %d: %.200s", req.Method, req.URL.Redacted(), res.StatusCode, body)
	}
	return body, nil
}
