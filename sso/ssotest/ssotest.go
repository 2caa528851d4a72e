// Package ssotest is a minimal OpenID Connect provider for tests: discovery,
// JWKS, authorize and token endpoints on a loopback httptest server, with
// keys it generates. The authorize endpoint signs in whoever the test says
// (no login form) and checks what a real provider checks: the client, the
// redirect URI, the PKCE challenge; the token endpoint checks the client
// secret, the code (single use) and the verifier. Knobs let a test make it
// misbehave (a wrong audience, an expired token, a foreign key, alg none…).
package ssotest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Provider is one running test identity provider.
type Provider struct {
	// URL is the issuer, http://127.0.0.1:port.
	URL          string
	ClientID     string
	ClientSecret string
	// Key signs ID tokens (RS256, kid KeyID) and is published in the JWKS.
	Key   *rsa.PrivateKey
	KeyID string

	srv *httptest.Server
	// ec, when set (StartES256), signs ID tokens with ES256 instead.
	ec *ecdsa.PrivateKey

	mu    sync.Mutex
	user  jwt.MapClaims // who the authorize endpoint signs in
	codes map[string]grant
	// Mutate, when set, changes the ID token's claims before signing.
	mutate func(jwt.MapClaims)
	// sign, when set, signs the ID token instead of Key.
	sign func(jwt.MapClaims) string
	// TokenRequests counts successful token exchanges.
	tokenRequests int
	// issuer, when not "", is the issuer the discovery document claims.
	issuer string
	// postOnly advertises client_secret_post as the only client
	// authentication and refuses HTTP basic.
	postOnly bool
	// accessTokens maps issued access tokens to the claims userinfo
	// returns; idTokenClaims, when set, limits the ID token to these
	// claims (the rest only through userinfo).
	accessTokens  map[string]jwt.MapClaims
	idTokenClaims []string
	userinfoSub   string // when not "", userinfo names this subject instead
}

// ClaimsOnlyInUserinfo keeps every user claim but sub out of the ID token:
// they are served by the userinfo endpoint only (nil: all in the token).
// sub, when not "", is the subject userinfo claims instead of the real one.
func (p *Provider) ClaimsOnlyInUserinfo(on bool, sub string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idTokenClaims = nil
	if on {
		p.idTokenClaims = []string{"sub"}
	}
	p.userinfoSub = sub
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	claims, ok := p.accessTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	sub := p.userinfoSub
	p.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token"})
		return
	}
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	if sub != "" {
		out["sub"] = sub
	}
	writeJSON(w, http.StatusOK, out)
}

type grant struct {
	claims      jwt.MapClaims
	nonce       string
	challenge   string
	redirectURI string
}

// Start runs a provider for client id "parley" with a random secret; it
// stops when the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{ClientID: "parley", ClientSecret: RandomString(), Key: key, KeyID: "k-" + RandomString()[:8],
		codes: map[string]grant{}, accessTokens: map[string]jwt.MapClaims{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// StartES256 is Start with ID tokens signed by an ECDSA P-256 key (ES256),
// and client_secret_post as the only client authentication.
func StartES256(t testing.TB) *Provider {
	t.Helper()
	p := Start(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ec, p.postOnly = ec, true
	p.mu.Unlock()
	return p
}

// ClaimIssuer makes the discovery document name another issuer than the
// provider's URL ("" restores it).
func (p *Provider) ClaimIssuer(iss string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issuer = iss
}

// SignIn sets who the next authorizations sign in: sub plus the claims
// given (preferred_username, name, …).
func (p *Provider) SignIn(sub string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := jwt.MapClaims{"sub": sub}
	for k, v := range claims {
		c[k] = v
	}
	p.user = c
}

// Mutate changes every ID token's claims before signing (nil: none).
func (p *Provider) Mutate(f func(jwt.MapClaims)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mutate = f
}

// SignWith signs every ID token with f instead of the provider's key
// (nil: the key).
func (p *Provider) SignWith(f func(jwt.MapClaims) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sign = f
}

// TokenRequests is the number of successful code exchanges.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenRequests
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	issuer, algs, auth := p.URL, []string{"RS256"}, []string{"client_secret_basic", "client_secret_post"}
	if p.issuer != "" {
		issuer = p.issuer
	}
	if p.ec != nil {
		algs = []string{"ES256"}
	}
	if p.postOnly {
		auth = []string{"client_secret_post"}
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"jwks_uri":                              p.URL + "/jwks",
		"userinfo_endpoint":                     p.URL + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": auth,
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var pub crypto.PublicKey = &p.Key.PublicKey
	if p.ec != nil {
		pub = &p.ec.PublicKey
	}
	_, _ = w.Write(JWKS(map[string]crypto.PublicKey{p.KeyID: pub}))
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	switch {
	case q.Get("client_id") != p.ClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case err != nil || redirect.Scheme != "http" || q.Get("redirect_uri") == "":
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(params url.Values) {
		params.Set("state", q.Get("state"))
		redirect.RawQuery = params.Encode()
		http.Redirect(w, r, redirect.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" || !strings.Contains(" "+q.Get("scope")+" ", " openid ") ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		back(url.Values{"error": {"invalid_request"}})
		return
	}
	p.mu.Lock()
	user := p.user
	code := RandomString()
	if user != nil {
		p.codes[code] = grant{claims: user, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
	}
	p.mu.Unlock()
	if user == nil {
		back(url.Values{"error": {"access_denied"}, "error_description": {"nobody signed in"}})
		return
	}
	back(url.Values{"code": {code}})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok && p.postOnly {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	mutate, sign := p.mutate, p.sign
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("grant_type") != "authorization_code" || !found ||
		g.redirectURI != r.PostForm.Get("redirect_uri") ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.URL, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	p.mu.Lock()
	only := p.idTokenClaims
	p.mu.Unlock()
	for k, v := range g.claims {
		if only == nil || slices.Contains(only, k) {
			claims[k] = v
		}
	}
	if mutate != nil {
		mutate(claims)
	}
	var idToken string
	switch {
	case sign != nil:
		idToken = sign(claims)
	case p.ec != nil:
		idToken = Sign(jwt.SigningMethodES256, p.ec, p.KeyID, claims)
	default:
		idToken = Sign(jwt.SigningMethodRS256, p.Key, p.KeyID, claims)
	}
	access := RandomString()
	p.mu.Lock()
	p.tokenRequests++
	p.accessTokens[access] = g.claims
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": 300, "id_token": idToken})
}

// Sign signs claims with method and key, naming kid in the header when
// it is not "".
func Sign(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(method, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// Unsigned is claims as an "alg": "none" token.
func Unsigned(claims jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return s
}

// JWKS encodes public keys (RSA, ECDSA, Ed25519) as a JWK Set, by kid.
func JWKS(keys map[string]crypto.PublicKey) []byte {
	var out []map[string]string
	enc := base64.RawURLEncoding.EncodeToString
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			out = append(out, map[string]string{"kty": "RSA", "kid": kid, "use": "sig",
				"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			size := (k.Curve.Params().BitSize + 7) / 8
			raw, err := k.Bytes()
			if err != nil {
				panic(err)
			}
			out = append(out, map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
				"x": enc(raw[1 : 1+size]), "y": enc(raw[1+size:])})
		case ed25519.PublicKey:
			out = append(out, map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)})
		default:
			panic("ssotest: unsupported key type")
		}
	}
	b, _ := json.Marshal(map[string]any{"keys": out})
	return b
}

// RandomString is 32 random bytes, URL-safe base64.
func RandomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
