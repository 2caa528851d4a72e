package sso

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/config"
)

// discovery is the part of an OpenID Provider's metadata the code flow
// uses (OpenID Connect Discovery 1.0, section 3).
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
}

// provider is one configured OpenID Connect provider: its metadata
// (fetched on first use, kept for an hour) and its key set.
type provider struct {
	cfg   config.OIDCProvider
	fetch Fetcher
	now   func() time.Time

	mu        sync.Mutex
	disc      *discovery
	fetchedAt time.Time
	keys      *KeySet
}

func newProvider(cfg config.OIDCProvider, fetch Fetcher) *provider {
	return &provider{cfg: cfg.WithDefaults(), fetch: fetch, now: time.Now}
}

// metadata returns the provider's discovery document, fetching it when
// missing or an hour old. Its issuer must be the configured one exactly
// (Discovery 1.0 section 4.3): a document that names another issuer would
// let that issuer's tokens in.
func (p *provider) metadata(ctx context.Context) (*discovery, *KeySet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil && p.now().Sub(p.fetchedAt) < time.Hour {
		return p.disc, p.keys, nil
	}
	u := strings.TrimSuffix(p.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	body, err := p.fetch.Get(ctx, u)
	if err != nil {
		if p.disc != nil { // keep serving the old document while the provider is away
			return p.disc, p.keys, nil
		}
		return nil, nil, fmt.Errorf("%w: discovery of %s: %w", ErrProviderUnavailable, p.cfg.ID, err)
	}
	var d discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, nil, fmt.Errorf("%w: discovery of %s: %w", ErrProviderUnavailable, p.cfg.ID, err)
	}
	switch {
	case d.Issuer != p.cfg.Issuer:
		return nil, nil, fmt.Errorf("%w: discovery of %s: issuer %q is not the configured %q", ErrProviderUnavailable, p.cfg.ID, d.Issuer, p.cfg.Issuer)
	case !absoluteHTTP(d.AuthorizationEndpoint) || !absoluteHTTP(d.TokenEndpoint) || !absoluteHTTP(d.JWKSURI):
		return nil, nil, fmt.Errorf("%w: discovery of %s: missing or invalid endpoints", ErrProviderUnavailable, p.cfg.ID)
	}
	if p.keys == nil || p.disc.JWKSURI != d.JWKSURI {
		p.keys = NewKeySet(d.JWKSURI, p.fetch)
	}
	p.disc, p.fetchedAt = &d, p.now()
	return p.disc, p.keys, nil
}

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// authorizeURL is the authorization request of the code flow with PKCE
// (S256), state and nonce.
func (p *provider) authorizeURL(ctx context.Context, callback, state, nonce, verifier string) (string, error) {
	d, _, err := p.metadata(ctx)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(d.AuthorizationEndpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", p.cfg.ClientID)
	q.Set("redirect_uri", callback)
	q.Set("scope", p.cfg.Scopes)
	q.Set("state", state)
	q.Set("nonce", nonce)
	q.Set("code_challenge", pkceChallenge(verifier))
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// errIDToken marks a refused ID token or code exchange: the provider, or
// whoever forged the callback, is at fault, not the server.
var errIDToken = errors.New("sso: ID token refused")

// exchange trades the code for tokens at the token endpoint and returns
// the verified ID token's claims.
func (p *provider) exchange(ctx context.Context, callback, code, verifier, nonce string) (jwt.MapClaims, error) {
	d, keys, err := p.metadata(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback},
		"code_verifier": {verifier}, "client_id": {p.cfg.ClientID}}
	user, pass := "", ""
	if p.cfg.ClientSecret != "" {
		// client_secret_basic is the default method (Discovery 1.0);
		// client_secret_post when the provider only offers that. RFC 6749
		// section 2.3.1: the basic credentials are form-encoded first.
		if len(d.TokenAuthMethods) == 0 || slices.Contains(d.TokenAuthMethods, "client_secret_basic") {
			user, pass = url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret)
		} else {
			form.Set("client_secret", p.cfg.ClientSecret)
		}
	}
	body, err := p.fetch.PostForm(ctx, d.TokenEndpoint, form, user, pass)
	if err != nil {
		return nil, fmt.Errorf("%w: token endpoint of %s: %w", errIDToken, p.cfg.ID, err)
	}
	var tok struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.IDToken == "" {
		return nil, fmt.Errorf("%w: token endpoint of %s returned no id_token", errIDToken, p.cfg.ID)
	}
	claims, err := p.verifyIDToken(ctx, d, keys, tok.IDToken, nonce)
	if err != nil || !p.cfg.Userinfo {
		return claims, err
	}
	return p.userinfo(ctx, d, tok.AccessToken, claims)
}

// userinfo merges the userinfo endpoint's claims into the ID token's. Its
// sub must be the ID token's (OpenID Connect Core 1.0 section 5.3.2: the
// answer could otherwise be another user's); the ID token's claims win.
func (p *provider) userinfo(ctx context.Context, d *discovery, accessToken string, claims jwt.MapClaims) (jwt.MapClaims, error) {
	if !absoluteHTTP(d.UserinfoEndpoint) || accessToken == "" {
		return nil, fmt.Errorf("%w: discovery of %s: no userinfo endpoint or access token", ErrProviderUnavailable, p.cfg.ID)
	}
	body, err := p.fetch.GetBearer(ctx, d.UserinfoEndpoint, accessToken)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo of %s: %w", ErrProviderUnavailable, p.cfg.ID, err)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("%w: userinfo of %s: %w", ErrProviderUnavailable, p.cfg.ID, err)
	}
	if sub, _ := info["sub"].(string); sub == "" || sub != claims["sub"] {
		return nil, fmt.Errorf("%w: %s: userinfo is about another subject", errIDToken, p.cfg.ID)
	}
	for k, v := range info {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return claims, nil
}

// verifyIDToken checks the ID token (OpenID Connect Core 1.0 section
// 3.1.3.7): signature by a key of the provider's JWKS with an asymmetric
// algorithm it announces, iss, aud (and azp when there are several
// audiences), exp, and the nonce of this flow.
func (p *provider) verifyIDToken(ctx context.Context, d *discovery, keys *KeySet, raw, nonce string) (jwt.MapClaims, error) {
	algs := []string{}
	for _, a := range d.SigningAlgs {
		if a != "none" && !strings.HasPrefix(a, "HS") {
			algs = append(algs, a)
		}
	}
	if len(d.SigningAlgs) == 0 {
		algs = []string{"RS256"} // the default of Discovery 1.0
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return keys.Key(ctx, kid, t.Method.Alg())
	}, jwt.WithValidMethods(algs), jwt.WithIssuer(p.cfg.Issuer), jwt.WithAudience(p.cfg.ClientID),
		jwt.WithExpirationRequired(), jwt.WithLeeway(leeway), jwt.WithTimeFunc(p.now))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", errIDToken, p.cfg.ID, jwtReason(err))
	}
	if aud, _ := claims.GetAudience(); len(aud) > 1 {
		if azp, _ := claims["azp"].(string); azp != p.cfg.ClientID {
			return nil, fmt.Errorf("%w: %s: azp is not this client", errIDToken, p.cfg.ID)
		}
	}
	if got, _ := claims["nonce"].(string); got != nonce {
		return nil, fmt.Errorf("%w: %s: nonce does not match", errIDToken, p.cfg.ID)
	}
	return claims, nil
}
