package sso

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/sso/ssotest"
)

// FuzzParseJWKS: any input either fails or yields keys that each fit some
// algorithm (no symmetric or malformed key slips through).
func FuzzParseJWKS(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(ssotest.JWKS(map[string]crypto.PublicKey{"a": &ec.PublicKey, "b": ed}))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			fits := false
			for _, alg := range []string{"RS256", "ES256", "ES384", "ES512", "EdDSA"} {
				fits = fits || keyFits(alg, k.Key)
			}
			if !fits {
				t.Fatalf("key %q of type %T fits no algorithm", k.KeyID, k.Key)
			}
		}
	})
}

// FuzzMapLocalpart: the mapping always yields the user id grammar.
func FuzzMapLocalpart(f *testing.F) {
	for _, s := range []string{"alice", "Zoë", "a b=c", "\x00\xff", "@x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := MapLocalpart(s)
		if s != "" && !id.ValidNewLocalpart(got) {
			t.Fatalf("MapLocalpart(%q) = %q: not a valid localpart", s, got)
		}
	})
}

// FuzzRedirectAllowed: an accepted URL has the allowed scheme and host and
// a path under the allowed one, whatever its spelling.
func FuzzRedirectAllowed(f *testing.F) {
	s := &Service{}
	allowed, _ := url.Parse("https://client.example/app/")
	s.allowed = []*url.URL{allowed}
	for _, u := range []string{"https://client.example/app/", "https://client.example/app/../x", "https://evil/app/",
		"https://client.example\\@evil/app/", "https://client.example/app/%2e%2e/x", "HTTPS://CLIENT.EXAMPLE/app/x?loginToken=1"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !s.RedirectAllowed(raw) {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !strings.EqualFold(u.Scheme, "https") || !strings.EqualFold(u.Host, "client.example") ||
			!strings.HasPrefix(u.Path, "/app") || strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") {
			t.Fatalf("accepted %q", raw)
		}
	})
}

func TestRedirectAllowed(t *testing.T) {
	s := &Service{}
	for _, a := range []string{"https://client.example/app/", "io.element.desktop://vector/webapp/", "http://localhost:8080"} {
		u, _ := url.Parse(a)
		s.allowed = append(s.allowed, u)
	}
	for raw, want := range map[string]bool{
		"https://client.example/app/":                true,
		"https://client.example/app":                 true,
		"https://client.example/app/x/y?a=b#/login":  true,
		"https://Client.Example/app/":                true,
		"io.element.desktop://vector/webapp/?x=1":    true,
		"http://localhost:8080/":                     true,
		"http://localhost:8080":                      true,
		"http://localhost:8081/":                     false,
		"https://client.example/application":         false,
		"https://client.example/":                    false,
		"http://client.example/app/":                 false,
		"https://client.example/app/../admin":        false,
		"https://client.example/app/./x":             false,
		"https://client.example/app/%2E%2E/admin":    false,
		"https://u:p@client.example/app/":            false,
		"https://client.example\\@evil.example/app/": false,
		"https://client.example.evil.example/app/":   false,
		"/app/": false,
		"":      false,
		"https://client.example/app/\r\nSet-Cookie: x": false,
	} {
		if got := s.RedirectAllowed(raw); got != want {
			t.Errorf("RedirectAllowed(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestWithLoginToken(t *testing.T) {
	got := withLoginToken("https://c.example/app/?loginToken=a&loginToken=b&x=1#/frag", "T")
	u, _ := url.Parse(got)
	if q := u.Query(); len(q["loginToken"]) != 1 || q.Get("loginToken") != "T" || q.Get("x") != "1" || u.Fragment != "/frag" {
		t.Fatalf("%s", got)
	}
}
