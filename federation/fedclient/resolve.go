package fedclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// DefaultPort is the federation port when discovery finds no other
// (server-server API, "Resolving server names").
const DefaultPort = "8448"

// Well-known cache lifetimes the spec recommends: 24 hours when the
// response has no cache headers, at most 48 hours, errors for an hour.
const (
	wellKnownDefaultTTL = 24 * time.Hour
	wellKnownMaxTTL     = 48 * time.Hour
	wellKnownErrorTTL   = time.Hour
	// wellKnownFirstErrorTTL is how long a first failure is kept.
	wellKnownFirstErrorTTL = 5 * time.Minute
	wellKnownMaxBody       = 64 << 10
	// targetTTL bounds how long a resolved target (SRV answers included)
	// is reused before discovery runs again.
	targetTTL = 10 * time.Minute
)

// Target is where requests to a server go.
type Target struct {
	// Addr is the host:port to dial; the host may be a name resolved at
	// dial time.
	Addr string
	// Host is the Host header.
	Host string
	// TLSName is the name the certificate must be valid for: the server
	// name's host or the delegated host (an IP literal when the host is
	// one; no SNI is then sent).
	TLSName string
	// Fallbacks are the further SRV targets (host:port) to connect to, in
	// order, when Addr does not answer (RFC 2782: every record of a
	// priority, in weighted random order, before the next priority).
	Fallbacks []string
}

// Addrs are Addr and then the fallbacks.
func (t Target) Addrs() []string { return append([]string{t.Addr}, t.Fallbacks...) }

// srvLookup is net.Resolver.LookupSRV; tests replace it.
type srvLookup func(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)

// resolver runs server discovery with caches.
type resolver struct {
	static    map[id.ServerName]string
	lookupSRV srvLookup
	// intn draws the SRV weights' random numbers in [0, n).
	intn func(n int) int
	// wellKnown fetches https://host/.well-known/matrix/server.
	wellKnown *http.Client
	now       func() time.Time

	mu      sync.Mutex
	wk      map[string]wellKnownEntry
	targets map[id.ServerName]targetEntry
}

type wellKnownEntry struct {
	server   string // m.server, "" when the lookup failed
	expires  time.Time
	failures int // consecutive failed lookups
}

type targetEntry struct {
	target  Target
	expires time.Time
}

// resolve finds the target of a server name: the federation.resolve map
// first, then the spec's steps.
func (r *resolver) resolve(ctx context.Context, server id.ServerName) (Target, error) {
	if addr, ok := r.static[server]; ok {
		host, _ := id.SplitHostPort(server)
		return Target{Addr: addr, Host: string(server), TLSName: trimBrackets(host)}, nil
	}
	now := r.now()
	r.mu.Lock()
	if e, ok := r.targets[server]; ok && now.Before(e.expires) {
		r.mu.Unlock()
		return e.target, nil
	}
	r.mu.Unlock()
	t, err := r.discover(ctx, server)
	if err != nil {
		return Target{}, err
	}
	r.mu.Lock()
	r.targets[server] = targetEntry{target: t, expires: now.Add(targetTTL)}
	r.mu.Unlock()
	return t, nil
}

// forget drops server's resolved target.
func (r *resolver) forget(server id.ServerName) {
	r.mu.Lock()
	delete(r.targets, server)
	r.mu.Unlock()
}

func (r *resolver) discover(ctx context.Context, server id.ServerName) (Target, error) {
	if _, err := id.ParseServerName(string(server)); err != nil {
		return Target{}, fmt.Errorf("resolve %q: %w", server, err)
	}
	host, port := id.SplitHostPort(server)
	bare := trimBrackets(host)
	// Step 1: an IP literal, with its port or 8448.
	if _, err := netip.ParseAddr(bare); err == nil {
		return Target{Addr: net.JoinHostPort(bare, portOr(port)), Host: string(server), TLSName: bare}, nil
	}
	// Step 2: a hostname with an explicit port.
	if port != "" {
		return Target{Addr: net.JoinHostPort(host, port), Host: string(server), TLSName: host}, nil
	}
	// Step 3: /.well-known/matrix/server delegation.
	if delegated := r.wellKnownServer(ctx, host); delegated != "" {
		dhost, dport := id.SplitHostPort(id.ServerName(delegated))
		dbare := trimBrackets(dhost)
		switch {
		case isIP(dbare): // 3.1
			return Target{Addr: net.JoinHostPort(dbare, portOr(dport)), Host: delegated, TLSName: dbare}, nil
		case dport != "": // 3.2
			return Target{Addr: net.JoinHostPort(dhost, dport), Host: delegated, TLSName: dhost}, nil
		}
		// 3.3, 3.4, 3.5: SRV of the delegated host, else its port 8448.
		if addrs := r.srv(ctx, dhost); len(addrs) > 0 {
			return Target{Addr: addrs[0], Host: dhost, TLSName: dhost, Fallbacks: rest(addrs)}, nil
		}
		return Target{Addr: net.JoinHostPort(dhost, DefaultPort), Host: dhost, TLSName: dhost}, nil
	}
	// Steps 4 and 5: SRV _matrix-fed._tcp, then the deprecated _matrix._tcp.
	if addrs := r.srv(ctx, host); len(addrs) > 0 {
		return Target{Addr: addrs[0], Host: host, TLSName: host, Fallbacks: rest(addrs)}, nil
	}
	// Step 6: the host on 8448.
	return Target{Addr: net.JoinHostPort(host, DefaultPort), Host: host, TLSName: host}, nil
}

// srv looks up _matrix-fed._tcp.host, then (only when that has no
// record) the deprecated _matrix._tcp.host, and returns every target in
// the order to try them (orderSRV); none when neither has a usable record.
func (r *resolver) srv(ctx context.Context, host string) []string {
	for _, service := range []string{"matrix-fed", "matrix"} {
		_, records, err := r.lookupSRV(ctx, service, "tcp", host)
		if err != nil {
			continue
		}
		var addrs []string
		for _, rec := range orderSRV(records, r.randIntn) {
			target := strings.TrimSuffix(rec.Target, ".")
			if target == "" {
				continue // "." means the service is not offered
			}
			addrs = append(addrs, net.JoinHostPort(target, strconv.Itoa(int(rec.Port))))
		}
		if len(addrs) > 0 {
			return addrs
		}
	}
	return nil
}

// rest is addrs after the first, nil when none.
func rest(addrs []string) []string {
	if len(addrs) < 2 {
		return nil
	}
	return addrs[1:]
}

func (r *resolver) randIntn(n int) int {
	if r.intn != nil {
		return r.intn(n)
	}
	return rand.IntN(n)
}

// orderSRV sorts records as RFC 2782 says clients try them: by priority,
// lowest first, and within a priority by weighted random selection (a
// record is picked with a chance proportional to its weight; weight 0
// records have a small chance, being placed first before the draw).
// intn(n) draws in [0, n).
func orderSRV(records []*net.SRV, intn func(int) int) []*net.SRV {
	sorted := slices.Clone(records)
	slices.SortStableFunc(sorted, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]*net.SRV, 0, len(sorted))
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Priority == sorted[i].Priority {
			j++
		}
		// The RFC's zero-weight records first, then the others.
		group := slices.Clone(sorted[i:j])
		slices.SortStableFunc(group, func(a, b *net.SRV) int {
			return cmp.Compare(min(a.Weight, 1), min(b.Weight, 1))
		})
		for len(group) > 0 {
			total := 0
			for _, rec := range group {
				total += int(rec.Weight)
			}
			pick := 0
			if total > 0 {
				n, sum := intn(total+1), 0
				for k, rec := range group {
					sum += int(rec.Weight)
					if sum >= n {
						pick = k
						break
					}
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		i = j
	}
	return out
}

// wellKnownServer returns m.server of host's /.well-known/matrix/server,
// "" when it has none, from a cache that honours Cache-Control and Expires
// (24 hours without them, at most 48). Failures are kept for 5 minutes,
// doubling with each consecutive failure up to an hour: the spec's
// "cached for up to an hour" with its encouraged exponential back-off, so
// that one transient error does not misroute a server for an hour.
func (r *resolver) wellKnownServer(ctx context.Context, host string) string {
	now := r.now()
	r.mu.Lock()
	prev, ok := r.wk[host]
	if ok && now.Before(prev.expires) {
		r.mu.Unlock()
		return prev.server
	}
	r.mu.Unlock()
	server, ttl := r.fetchWellKnown(ctx, host, now)
	entry := wellKnownEntry{server: server, expires: now.Add(ttl)}
	if ttl == wellKnownErrorTTL {
		entry.failures = prev.failures + 1
		entry.expires = now.Add(min(wellKnownFirstErrorTTL<<min(prev.failures, 10), wellKnownErrorTTL))
	}
	r.mu.Lock()
	r.wk[host] = entry
	r.mu.Unlock()
	return server
}

func (r *resolver) fetchWellKnown(ctx context.Context, host string, now time.Time) (string, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", wellKnownErrorTTL
	}
	res, err := r.wellKnown.Do(req)
	if err != nil {
		return "", wellKnownErrorTTL
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, wellKnownMaxBody))
	if err != nil || res.StatusCode != http.StatusOK {
		return "", wellKnownErrorTTL
	}
	var doc struct {
		Server string `json:"m.server"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", wellKnownErrorTTL
	}
	if _, err := id.ParseServerName(doc.Server); err != nil {
		return "", wellKnownErrorTTL
	}
	return doc.Server, cacheTTL(res.Header, now)
}

// cacheTTL reads Cache-Control max-age (no-store/no-cache: not cached
// beyond this lookup) or Expires, bounded by wellKnownMaxTTL.
func cacheTTL(h http.Header, now time.Time) time.Duration {
	for _, directive := range strings.Split(h.Get("Cache-Control"), ",") {
		directive = strings.ToLower(strings.TrimSpace(directive))
		switch {
		case directive == "no-store" || directive == "no-cache":
			return 0
		case strings.HasPrefix(directive, "max-age="):
			secs, err := strconv.ParseInt(strings.TrimPrefix(directive, "max-age="), 10, 64)
			if err == nil && secs >= 0 {
				return min(time.Duration(secs)*time.Second, wellKnownMaxTTL)
			}
		}
	}
	if exp := h.Get("Expires"); exp != "" {
		t, err := http.ParseTime(exp)
		if err != nil {
			return 0 // an invalid Expires means already expired (RFC 9111)
		}
		return min(max(t.Sub(now), 0), wellKnownMaxTTL)
	}
	return wellKnownDefaultTTL
}

func portOr(port string) string {
	if port == "" {
		return DefaultPort
	}
	return port
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

func trimBrackets(host string) string {
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

// errPrivateAddress is the dial error for a refused address.
var errPrivateAddress = errors.New("address is not public (federation.allow_private_addresses is off)")
