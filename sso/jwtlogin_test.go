package sso

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/sso/ssotest"
)

// memFetcher serves fixed bodies by URL and counts the fetches.
type memFetcher struct {
	mu     sync.Mutex
	bodies map[string][]byte
	gets   int
}

func (f *memFetcher) Get(_ context.Context, u string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	b, ok := f.bodies[u]
	if !ok {
		return nil, errors.New("404")
	}
	return b, nil
}

func (f *memFetcher) GetBearer(ctx context.Context, u, _ string) ([]byte, error) {
	return f.Get(ctx, u)
}

func (f *memFetcher) PostForm(context.Context, string, url.Values, string, string) ([]byte, error) {
	return nil, errors.New("not supported")
}

func (f *memFetcher) set(u string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies[u] = b
}

func pemOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

type algCase struct {
	alg    string
	method jwt.SigningMethod
	priv   any
	pub    crypto.PublicKey
}

func algCases(t *testing.T) []algCase {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []algCase{
		{"RS256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"PS256", jwt.SigningMethodPS256, rsaKey, &rsaKey.PublicKey},
		{"ES256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"ES384", jwt.SigningMethodES384, ec384, &ec384.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edPriv, edPub},
	}
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iss": "https://idp.example", "aud": "parley",
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "name": "Alice A."}
	if mod != nil {
		mod(c)
	}
	return c
}

func baseJWT() config.JWT {
	return config.JWT{Enabled: true, Issuer: "https://idp.example", Audiences: "other, parley",
		RequiredClaims: "exp", SubjectClaim: "sub", DisplayNameClaim: "name"}
}

func mustForbidden(t *testing.T, err error, reason string) {
	t.Helper()
	m, ok := mxerr.As(err)
	if !ok || m.Code != mxerr.Forbidden.Code {
		t.Fatalf("err = %v, want M_FORBIDDEN", err)
	}
	if !strings.Contains(m.Message, reason) {
		t.Fatalf("message %q does not say %q", m.Message, reason)
	}
}

// Every algorithm verifies with a configured PEM public key and with a
// JWKS; HS256 with the shared secret.
func TestJWTEachAlgorithm(t *testing.T) {
	ctx := context.Background()
	secret := "0123456789abcdef-shared-secret"
	hs := baseJWT()
	hs.Algorithm, hs.Secret = "HS256", secret
	v, err := NewJWTVerifier(hs, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(ctx, ssotest.Sign(jwt.SigningMethodHS256, []byte(secret), "", claims(nil)))
	if err != nil || got.Localpart != "alice" || got.DisplayName != "Alice A." {
		t.Fatalf("HS256: %+v, %v", got, err)
	}
	for _, c := range algCases(t) {
		t.Run(c.alg+"/pem", func(t *testing.T) {
			cfg := baseJWT()
			cfg.Algorithm, cfg.PublicKey = c.alg, pemOf(t, c.pub)
			v, err := NewJWTVerifier(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := v.Verify(ctx, ssotest.Sign(c.method, c.priv, "", claims(nil))); err != nil || got.Localpart != "alice" {
				t.Fatalf("%+v, %v", got, err)
			}
		})
		t.Run(c.alg+"/jwks", func(t *testing.T) {
			f := &memFetcher{bodies: map[string][]byte{"https://idp.example/jwks": ssotest.JWKS(map[string]crypto.PublicKey{"k1": c.pub})}}
			cfg := baseJWT()
			cfg.Algorithm, cfg.JWKSURL = c.alg, "https://idp.example/jwks"
			v, err := NewJWTVerifier(cfg, f)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := v.Verify(ctx, ssotest.Sign(c.method, c.priv, "k1", claims(nil))); err != nil || got.Localpart != "alice" {
				t.Fatalf("%+v, %v", got, err)
			}
		})
	}
}

// Each refusal of the issue, for a JWKS-configured RS256 verifier and an
// HS256 one: expired, not yet valid, wrong audience, wrong issuer, unknown
// key, alg none, algorithm confusion, missing claims.
func TestJWTRefusals(t *testing.T) {
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	const jwksURL = "https://idp.example/jwks"
	f := &memFetcher{bodies: map[string][]byte{jwksURL: ssotest.JWKS(map[string]crypto.PublicKey{"k1": &rsaKey.PublicKey})}}
	cfg := baseJWT()
	cfg.Algorithm, cfg.JWKSURL, cfg.RequiredClaims = "RS256", jwksURL, "exp, iat"
	v, err := NewJWTVerifier(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	pemCfg := baseJWT()
	pemCfg.Algorithm, pemCfg.PublicKey = "RS256", pemOf(t, &rsaKey.PublicKey)
	pemV, err := NewJWTVerifier(pemCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rs := func(mod func(jwt.MapClaims)) string {
		return ssotest.Sign(jwt.SigningMethodRS256, rsaKey, "k1", claims(mod))
	}
	pubPEM := []byte(pemOf(t, &rsaKey.PublicKey))
	cases := []struct {
		name     string
		verifier *JWTVerifier
		token    string
		reason   string
	}{
		{"expired", v, rs(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "expired"},
		{"not yet valid", v, rs(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "not valid yet"},
		{"wrong audience", v, rs(func(c jwt.MapClaims) { c["aud"] = "someone-else" }), "audience"},
		{"no audience", v, rs(func(c jwt.MapClaims) { delete(c, "aud") }), "claim"},
		{"wrong issuer", v, rs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), "issuer"},
		{"no exp", v, rs(func(c jwt.MapClaims) { delete(c, "exp") }), "claim"},
		{"no iat (required_claims)", v, rs(func(c jwt.MapClaims) { delete(c, "iat") }), "missing claim iat"},
		{"no subject", v, rs(func(c jwt.MapClaims) { delete(c, "sub") }), "missing claim sub"},
		{"unknown kid", v, ssotest.Sign(jwt.SigningMethodRS256, otherKey, "k2", claims(nil)), "unknown signing key"},
		{"known kid, foreign key", v, ssotest.Sign(jwt.SigningMethodRS256, otherKey, "k1", claims(nil)), "signature"},
		{"foreign key, pem", pemV, ssotest.Sign(jwt.SigningMethodRS256, otherKey, "", claims(nil)), "signature"},
		{"alg none", v, ssotest.Unsigned(claims(nil)), "signature or algorithm"},
		{"alg none, pem", pemV, ssotest.Unsigned(claims(nil)), "signature or algorithm"},
		// Algorithm confusion: HMAC "signed" with the RSA public key.
		{"HS256 with the public key", pemV, ssotest.Sign(jwt.SigningMethodHS256, pubPEM, "", claims(nil)), "signature or algorithm"},
		{"HS256 with the public key, jwks", v, ssotest.Sign(jwt.SigningMethodHS256, pubPEM, "k1", claims(nil)), "signature or algorithm"},
		{"ES256 where RS256 is configured", v, ssotest.Sign(jwt.SigningMethodES256, ecKey, "k1", claims(nil)), "signature or algorithm"},
		{"garbage", v, "not.a.jwt", "malformed"},
		{"tampered payload", v, tamper(rs(nil)), "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.verifier.Verify(ctx, c.token)
			mustForbidden(t, err, c.reason)
		})
	}
	if _, err := v.Verify(ctx, rs(nil)); err != nil {
		t.Fatalf("the valid token is refused: %v", err)
	}
}

// tamper swaps the payload for one naming another user, keeping the
// signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	other := strings.Split(ssotest.Unsigned(claims(func(c jwt.MapClaims) { c["sub"] = "mallory" })), ".")
	return parts[0] + "." + other[1] + "." + parts[2]
}

// HS256 refusals: a token signed with another secret, and a token whose
// header claims RS256 when HS256 is configured.
func TestJWTSecretRefusals(t *testing.T) {
	cfg := baseJWT()
	cfg.Algorithm, cfg.Secret = "HS256", "0123456789abcdef-shared-secret"
	v, err := NewJWTVerifier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tok := range map[string]string{
		"other secret": ssotest.Sign(jwt.SigningMethodHS256, []byte("another-secret-of-16+bytes"), "", claims(nil)),
		"HS512":        ssotest.Sign(jwt.SigningMethodHS512, []byte(cfg.Secret), "", claims(nil)),
		"RS256":        ssotest.Sign(jwt.SigningMethodRS256, rsaKey, "", claims(nil)),
		"none":         ssotest.Unsigned(claims(nil)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tok)
			mustForbidden(t, err, "signature")
		})
	}
}

// A rotated key is found by refetching the JWKS on an unknown kid, but a
// stream of made-up kids fetches at most once per minRefresh.
func TestJWKSRefreshOnUnknownKid(t *testing.T) {
	ctx := context.Background()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	const jwksURL = "https://idp.example/jwks"
	f := &memFetcher{bodies: map[string][]byte{jwksURL: ssotest.JWKS(map[string]crypto.PublicKey{"k1": &k1.PublicKey})}}
	cfg := baseJWT()
	cfg.Algorithm, cfg.JWKSURL = "RS256", jwksURL
	v, _ := NewJWTVerifier(cfg, f)
	now := time.Now()
	v.jwks.now = func() time.Time { return now }
	v.now = func() time.Time { return now }
	if _, err := v.Verify(ctx, ssotest.Sign(jwt.SigningMethodRS256, k1, "k1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	// The provider rotates to k2; within minRefresh the new kid is not
	// fetched yet.
	f.set(jwksURL, ssotest.JWKS(map[string]crypto.PublicKey{"k1": &k1.PublicKey, "k2": &k2.PublicKey}))
	tok2 := ssotest.Sign(jwt.SigningMethodRS256, k2, "k2", claims(nil))
	for range 5 {
		_, err := v.Verify(ctx, ssotest.Sign(jwt.SigningMethodRS256, k2, "made-up", claims(nil)))
		mustForbidden(t, err, "unknown signing key")
	}
	if f.gets != 1 {
		t.Fatalf("%d fetches within minRefresh, want 1", f.gets)
	}
	now = now.Add(11 * time.Second)
	if got, err := v.Verify(ctx, tok2); err != nil || got.Localpart != "alice" {
		t.Fatalf("rotated key: %+v %v", got, err)
	}
	if f.gets != 2 {
		t.Fatalf("%d fetches, want 2", f.gets)
	}
}

// An unreachable JWKS is the server's problem (ErrProviderUnavailable),
// not a refusal of the token.
func TestJWKSUnavailable(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	cfg := baseJWT()
	cfg.Algorithm, cfg.JWKSURL = "RS256", "https://idp.example/missing"
	v, _ := NewJWTVerifier(cfg, &memFetcher{bodies: map[string][]byte{}})
	_, err := v.Verify(context.Background(), ssotest.Sign(jwt.SigningMethodRS256, k, "k1", claims(nil)))
	if !errors.Is(err, ErrProviderUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if _, refused := mxerr.As(err); refused {
		t.Fatalf("reported as a refusal: %v", err)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := string(ssotest.JWKS(map[string]crypto.PublicKey{"ok": &rsaKey.PublicKey}))
	set := `{"keys":[{"kty":"oct","kid":"sym","k":"c2VjcmV0"},{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},` +
		`{"kty":"EC","kid":"off","crv":"P-256","x":"AAAA","y":"AAAA"},` + strings.TrimSuffix(strings.TrimPrefix(good, `{"keys":[`), `]}`) + `]}`
	keys, err := ParseJWKS([]byte(set))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KeyID != "ok" {
		t.Fatalf("keys = %+v", keys)
	}
	if _, err := ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)); err == nil {
		t.Fatal("a set of symmetric keys was accepted")
	}
}
