package sso

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// Fetcher is how the package talks HTTP to identity providers;
// sso/oidcclient implements it with a client that refuses non-public
// addresses unless configured otherwise.
type Fetcher interface {
	// Get returns the body of a GET of url (a 2xx answer, bounded size).
	Get(ctx context.Context, url string) ([]byte, error)
	// GetBearer is Get with an OAuth access token (the userinfo endpoint).
	GetBearer(ctx context.Context, url, token string) ([]byte, error)
	// PostForm posts form (with HTTP basic auth when user is not "") and
	// returns the body of a 2xx answer.
	PostForm(ctx context.Context, url string, form url.Values, user, password string) ([]byte, error)
}

// ErrUnknownKey: no key of the set has the token's kid (after a refresh).
var ErrUnknownKey = errors.New("sso: unknown signing key")

// ErrProviderUnavailable: the identity provider's discovery document or
// JWKS could not be fetched or made no sense; the edge answers 502.
var ErrProviderUnavailable = errors.New("sso: identity provider unavailable")

// KeySet is a JWKS fetched from a URL and cached. A token naming a kid
// the cache does not know triggers a refetch (the provider rotated its
// keys), but at most once per minRefresh so that tokens with made-up kids
// cannot make the server hammer the provider.
type KeySet struct {
	url        string
	fetch      Fetcher
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration

	mu        sync.Mutex
	keys      []JWK
	fetchedAt time.Time
}

// NewKeySet returns a key set that loads url on first use.
func NewKeySet(url string, fetch Fetcher) *KeySet {
	return &KeySet{url: url, fetch: fetch, now: time.Now, minRefresh: 10 * time.Second, maxAge: time.Hour}
}

// Key returns the key that verifies a token signed with alg under kid.
// An empty kid is accepted only when exactly one key of the set fits alg.
func (s *KeySet) Key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.keys == nil || now.Sub(s.fetchedAt) > s.maxAge {
		if err := s.refresh(ctx, now); err != nil && s.keys == nil {
			return nil, err
		}
	}
	if k, ok := pick(s.keys, kid, alg); ok {
		return k, nil
	}
	if now.Sub(s.fetchedAt) >= s.minRefresh {
		if err := s.refresh(ctx, now); err != nil {
			return nil, err
		}
		if k, ok := pick(s.keys, kid, alg); ok {
			return k, nil
		}
	}
	return nil, ErrUnknownKey
}

func (s *KeySet) refresh(ctx context.Context, now time.Time) error {
	body, err := s.fetch.Get(ctx, s.url)
	if err != nil {
		return fmt.Errorf("%w: fetch JWKS %s: %w", ErrProviderUnavailable, s.url, err)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("%w: JWKS %s: %w", ErrProviderUnavailable, s.url, err)
	}
	s.keys, s.fetchedAt = keys, now
	return nil
}

// pick finds the key for kid and alg; a key whose set pins another
// algorithm, or whose type cannot verify alg, never matches.
func pick(keys []JWK, kid, alg string) (crypto.PublicKey, bool) {
	var found crypto.PublicKey
	n := 0
	for _, k := range keys {
		if (k.Algorithm != "" && k.Algorithm != alg) || !keyFits(alg, k.Key) {
			continue
		}
		if kid != "" {
			if k.KeyID == kid {
				return k.Key, true
			}
			continue
		}
		found = k.Key
		n++
	}
	return found, kid == "" && n == 1
}
