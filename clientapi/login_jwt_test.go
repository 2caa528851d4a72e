package clientapi_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/sso/ssotest"
)

const jwtSecret = "a shared secret of enough bytes"

func jwtLogin(t *testing.T, s *apptest.Server, token string) apptest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "org.matrix.login.jwt", "token": token})
}

func jwtClaims(sub string, mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "iss": "https://issuer.test", "aud": "parley", "exp": time.Now().Add(time.Minute).Unix(),
		"name": "Display " + sub}
	if mod != nil {
		mod(c)
	}
	return c
}

// JWT login with a shared secret against a real server: accounts created
// on first login when allowed, existing accounts, and the refusals.
func TestJWTLoginHS256(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) {
		c.Auth.JWT = config.JWT{Enabled: true, Algorithm: "HS256", Secret: jwtSecret, Issuer: "https://issuer.test",
			Audiences: "parley", RequiredClaims: "exp", SubjectClaim: "sub", DisplayNameClaim: "name", AllowRegistration: true}
	})
	hs := func(c jwt.MapClaims) string { return ssotest.Sign(jwt.SigningMethodHS256, []byte(jwtSecret), "", c) }
	aliceID, _ := s.Register(t, "alice", pw)

	res := s.Do(t, http.MethodGet, v3+"/login", "", nil)
	if !strings.Contains(string(res.Raw), `"org.matrix.login.jwt"`) || strings.Contains(string(res.Raw), "m.login.sso") {
		t.Fatalf("flows %s", res.Raw)
	}
	t.Run("an existing user", func(t *testing.T) {
		res := jwtLogin(t, s, hs(jwtClaims("alice", nil)))
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") != aliceID || res.String("access_token") == "" {
			t.Fatalf("%s", res.Raw)
		}
	})
	t.Run("a new user, with the display name claim", func(t *testing.T) {
		res := jwtLogin(t, s, hs(jwtClaims("newbie", nil)))
		apptest.MustStatus(t, res, http.StatusOK)
		prof := s.Do(t, http.MethodGet, v3+"/profile/"+res.String("user_id")+"/displayname", res.String("access_token"), nil)
		if res.String("user_id") != "@newbie:"+apptest.ServerName || prof.String("displayname") != "Display newbie" {
			t.Fatalf("%s %s", res.Raw, prof.Raw)
		}
	})
	t.Run("a full user id as subject", func(t *testing.T) {
		res := jwtLogin(t, s, hs(jwtClaims(aliceID, nil)))
		if res.String("user_id") != aliceID {
			t.Fatalf("%s", res.Raw)
		}
	})
	for _, c := range []struct{ name, token string }{
		{"expired", hs(jwtClaims("alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))},
		{"not yet valid", hs(jwtClaims("alice", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))},
		{"wrong audience", hs(jwtClaims("alice", func(c jwt.MapClaims) { c["aud"] = "other" }))},
		{"wrong issuer", hs(jwtClaims("alice", func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }))},
		{"no exp", hs(jwtClaims("alice", func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"other secret", ssotest.Sign(jwt.SigningMethodHS256, []byte("another secret of enough bytes"), "", jwtClaims("alice", nil))},
		{"alg none", ssotest.Unsigned(jwtClaims("alice", nil))},
		{"a user of another server", hs(jwtClaims("@alice:elsewhere.test", nil))},
		{"an invalid new user name", hs(jwtClaims("Not Valid!", nil))},
		{"empty", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := jwtLogin(t, s, c.token)
			if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
				t.Fatalf("%d %s", res.Status, res.Raw)
			}
		})
	}
}

// JWT login with EdDSA keys from a JWKS URL fetched over HTTP, and without
// registration: an unknown user is refused, a key the set lacks too.
func TestJWTLoginJWKS(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(ssotest.JWKS(map[string]crypto.PublicKey{"ed1": pub}))
	}))
	defer jwks.Close()
	s := apptest.Start(t, func(c *config.Config) {
		c.Auth.AllowPrivateAddresses = true
		c.Auth.JWT = config.JWT{Enabled: true, Algorithm: "EdDSA", JWKSURL: jwks.URL, RequiredClaims: "exp", SubjectClaim: "sub"}
	})
	bobID, _ := s.Register(t, "bob", pw)
	ed := func(key ed25519.PrivateKey, kid, sub string) string {
		return ssotest.Sign(jwt.SigningMethodEdDSA, key, kid, jwtClaims(sub, nil))
	}
	if res := jwtLogin(t, s, ed(priv, "ed1", "bob")); res.String("user_id") != bobID {
		t.Fatalf("%d %s", res.Status, res.Raw)
	}
	for name, tok := range map[string]string{
		"unknown user without registration": ed(priv, "ed1", "stranger"),
		"unknown key":                       ed(stranger, "ed2", "bob"),
		"foreign key under a known kid":     ed(stranger, "ed1", "bob"),
		"HS256 with the public key":         ssotest.Sign(jwt.SigningMethodHS256, []byte(pub), "ed1", jwtClaims("bob", nil)),
	} {
		t.Run(name, func(t *testing.T) {
			res := jwtLogin(t, s, tok)
			if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
				t.Fatalf("%d %s", res.Status, res.Raw)
			}
		})
	}
	// Without JWT configured the type is unknown.
	plain := apptest.Start(t)
	if res := jwtLogin(t, plain, ed(priv, "ed1", "bob")); res.Status != http.StatusBadRequest || strings.Contains(string(plain.Do(t, http.MethodGet, v3+"/login", "", nil).Raw), "jwt") {
		t.Fatalf("%d %s", res.Status, res.Raw)
	}
}
