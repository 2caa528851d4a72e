package clientapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/sso/ssotest"
)

// clientURL is the web client that may receive login tokens; the test
// browser stops at it instead of resolving it.
const clientURL = "http://client.test/app/"

// ssoServer starts Parley with the providers as idp1, idp2, … (idp2 and
// later with allow_existing_users) on loopback.
func ssoServer(t *testing.T, mutate func(*config.Config), providers ...*ssotest.Provider) *apptest.Server {
	t.Helper()
	return apptest.Start(t, func(c *config.Config) {
		c.Auth.AllowPrivateAddresses = true
		c.Auth.OIDC.AllowedRedirectURLs = clientURL + ", io.parley.test://callback"
		for i, p := range providers {
			c.Auth.OIDC.Providers = append(c.Auth.OIDC.Providers, config.OIDCProvider{
				ID: "idp" + string(rune('1'+i)), Name: "Provider " + string(rune('1'+i)), Issuer: p.URL,
				ClientID: p.ClientID, ClientSecret: p.ClientSecret, AllowExistingUsers: i > 0,
				DisplayNameTemplate: "{{.name}}",
			})
		}
		if mutate != nil {
			mutate(c)
		}
	})
}

// browser is an HTTP client with a cookie jar that follows redirects like
// a web browser, except to the client (clientURL's host and custom
// schemes), where it stops and keeps the last response.
type browser struct {
	http *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{http: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == "client.test" || (req.URL.Scheme != "http" && req.URL.Scheme != "https") {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("redirect loop")
			}
			return nil
		}}}
}

// page is a response as the browser ended on it.
type page struct {
	Status   int
	Location string
	Body     string
	URL      *url.URL
}

func (b *browser) do(t *testing.T, req *http.Request) page {
	t.Helper()
	res, err := b.http.Do(req)
	if err != nil {
		t.Fatalf("browser: %s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{Status: res.StatusCode, Location: res.Header.Get("Location"), Body: string(body), URL: res.Request.URL}
}

func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

func (b *browser) post(t *testing.T, u string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// ssoRedirectPath is the login redirect for idp with redirectUrl.
func ssoRedirectPath(idp, redirectURL string) string {
	p := v3 + "/login/sso/redirect"
	if idp != "" {
		p += "/" + idp
	}
	return p + "?redirectUrl=" + url.QueryEscape(redirectURL)
}

// ssoLogin runs the browser flow and returns the login token the client
// received; it fails the test when the browser does not end at the client.
func ssoLogin(t *testing.T, s *apptest.Server, b *browser, idp string) string {
	t.Helper()
	pg := b.get(t, s.URL+ssoRedirectPath(idp, clientURL+"?session=42"))
	if pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, clientURL) {
		t.Fatalf("the flow did not end at the client: %d %s %s", pg.Status, pg.Location, pg.Body)
	}
	u, _ := url.Parse(pg.Location)
	if u.Query().Get("session") != "42" || len(u.Query()["loginToken"]) != 1 {
		t.Fatalf("client URL %s", pg.Location)
	}
	return u.Query().Get("loginToken")
}

// redeem logs in with a login token.
func redeem(t *testing.T, s *apptest.Server, token string) apptest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.token", "token": token})
}

// mustRefusedAtCallback runs the flow and checks that it ends at Parley's
// callback with 403 M_FORBIDDEN and never reaches the client.
func mustRefusedAtCallback(t *testing.T, s *apptest.Server, idp string) {
	t.Helper()
	pg := newBrowser(t).get(t, s.URL+ssoRedirectPath(idp, clientURL))
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "M_FORBIDDEN") || pg.URL.Path != "/_synapse/client/oidc/callback" {
		t.Fatalf("status %d at %s (location %q): %s", pg.Status, pg.URL, pg.Location, pg.Body)
	}
}

func TestSSOLogin(t *testing.T) {
	p1, p2 := ssotest.Start(t), ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.Auth.OIDC.Providers[1].Brand = "gitlab" }, p1, p2)
	bobID, bobToken := s.Register(t, "bob", pw)

	t.Run("GET /login lists both providers", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, v3+"/login", "", nil)
		apptest.MustStatus(t, res, http.StatusOK)
		var sso map[string]any
		types := map[string]bool{}
		for _, f := range res.Body["flows"].([]any) {
			f := f.(map[string]any)
			types[f["type"].(string)] = true
			if f["type"] == "m.login.sso" {
				sso = f
			}
		}
		if !types["m.login.password"] || !types["m.login.token"] || types["org.matrix.login.jwt"] || sso == nil {
			t.Fatalf("flows %s", res.Raw)
		}
		idps, _ := sso["identity_providers"].([]any)
		if len(idps) != 2 || idps[0].(map[string]any)["id"] != "idp1" || idps[1].(map[string]any)["name"] != "Provider 2" ||
			idps[1].(map[string]any)["brand"] != "gitlab" || idps[0].(map[string]any)["brand"] != nil {
			t.Fatalf("identity_providers %v", idps)
		}
	})

	t.Run("a new user", func(t *testing.T) {
		p1.SignIn("sub-alice", map[string]any{"preferred_username": "Alice", "name": "Alice Liddell"})
		token := ssoLogin(t, s, newBrowser(t), "idp1")
		res := redeem(t, s, token)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") != "@alice:"+apptest.ServerName {
			t.Fatalf("user %s", res.Raw)
		}
		prof := s.Do(t, http.MethodGet, v3+"/profile/@alice:"+apptest.ServerName+"/displayname", res.String("access_token"), nil)
		if prof.String("displayname") != "Alice Liddell" {
			t.Fatalf("display name %s", prof.Raw)
		}
		// The login token is single-use.
		again := redeem(t, s, token)
		if again.Status != http.StatusForbidden || again.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("replayed login token: %d %s", again.Status, again.Raw)
		}
		// The same identity logs into the same account, even when the
		// provider's user name changed meanwhile.
		p1.SignIn("sub-alice", map[string]any{"preferred_username": "alice.renamed"})
		res = redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
		if res.String("user_id") != "@alice:"+apptest.ServerName {
			t.Fatalf("second login: %s", res.Raw)
		}
	})

	t.Run("a taken localpart gets a number", func(t *testing.T) {
		p1.SignIn("sub-other-bob", map[string]any{"preferred_username": "bob"})
		res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
		if res.String("user_id") != "@bob1:"+apptest.ServerName {
			t.Fatalf("collision: %s", res.Raw)
		}
	})

	t.Run("an existing user through the second provider", func(t *testing.T) {
		p2.SignIn("p2-bob", map[string]any{"preferred_username": "Bob"})
		res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp2"))
		if res.String("user_id") != bobID {
			t.Fatalf("existing user: %s", res.Raw)
		}
		// Bob's password still works: linking adds a way in.
		mustLogin(t, s, "bob", pw, nil)
		// Re-authentication offers the provider Bob is linked to only.
		first := s.Do(t, http.MethodPost, v3+"/delete_devices", bobToken, obj{"devices": []string{"X"}})
		pg := newBrowser(t).get(t, s.URL+v3+"/auth/m.login.sso/fallback/web?session="+url.QueryEscape(first.String("session")))
		if !strings.Contains(pg.Body, `value="idp2"`) || strings.Contains(pg.Body, `value="idp1"`) {
			t.Fatalf("confirmation page %s", pg.Body)
		}
	})

	t.Run("a deactivated account cannot sign in", func(t *testing.T) {
		p1.SignIn("sub-gina", map[string]any{"preferred_username": "gina"})
		login := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
		apptest.MustStatus(t, login, http.StatusOK)
		exec(t, s, `UPDATE users SET deactivated = TRUE WHERE user_id = $1`, login.String("user_id"))
		pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", clientURL))
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "M_USER_DEACTIVATED") {
			t.Fatalf("%d %s %s", pg.Status, pg.Location, pg.Body)
		}
	})

	t.Run("the same subject at another provider is another person", func(t *testing.T) {
		p2.SignIn("sub-alice", map[string]any{"preferred_username": "carol"})
		res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp2"))
		if res.String("user_id") != "@carol:"+apptest.ServerName {
			t.Fatalf("user %s", res.Raw)
		}
	})

	t.Run("a name the claims cannot give falls back to the subject", func(t *testing.T) {
		p1.SignIn("Zoë Ω", nil)
		res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
		if res.String("user_id") != "@zo=c3=ab=20=ce=a9:"+apptest.ServerName {
			t.Fatalf("user %s", res.Raw)
		}
	})

	t.Run("a loginToken already in the redirectUrl is replaced", func(t *testing.T) {
		p1.SignIn("sub-alice", nil)
		pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", clientURL+"x?loginToken=planted&keep=1"))
		u, err := url.Parse(pg.Location)
		if err != nil || pg.Status != http.StatusFound || u.Query()["loginToken"][0] == "planted" ||
			len(u.Query()["loginToken"]) != 1 || u.Query().Get("keep") != "1" || u.Path != "/app/x" {
			t.Fatalf("%d %s", pg.Status, pg.Location)
		}
	})

	t.Run("a custom-scheme client", func(t *testing.T) {
		pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", "io.parley.test://callback"))
		if pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, "io.parley.test://callback?loginToken=") {
			t.Fatalf("%d %s", pg.Status, pg.Location)
		}
	})

	t.Run("without an idp id, a page to choose", func(t *testing.T) {
		pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("", clientURL))
		if pg.Status != http.StatusOK || !strings.Contains(pg.Body, "/login/sso/redirect/idp1?redirectUrl=") ||
			!strings.Contains(pg.Body, "/login/sso/redirect/idp2?redirectUrl=") {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
	})
}

// The redirect goes to no URL outside auth.oidc.allowed_redirect_urls and
// to no unknown provider; nothing reaches the provider then.
func TestSSORedirectRefusals(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, nil, p)
	p.SignIn("sub", map[string]any{"preferred_username": "x"})
	for _, bad := range []string{
		"http://evil.test/app/",
		"http://client.test/other",
		"http://client.test/application",
		"https://client.test/app/",
		"http://client.test/app/../admin",
		"http://client.test/app/%2e%2e/admin",
		"http://user@client.test/app/",
		"http://client.test\\@evil.test/app/",
		"http://client.test.evil.test/app/",
		"//client.test/app/",
		"javascript:alert(1)//client.test/app/",
		"io.parley.test://elsewhere",
	} {
		t.Run(bad, func(t *testing.T) {
			pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", bad))
			if pg.Status != http.StatusForbidden || pg.Location != "" || !strings.Contains(pg.Body, "M_FORBIDDEN") {
				t.Fatalf("%d %q %s", pg.Status, pg.Location, pg.Body)
			}
		})
	}
	if pg := newBrowser(t).get(t, s.URL+v3+"/login/sso/redirect/idp1"); pg.Status != http.StatusBadRequest || !strings.Contains(pg.Body, "M_MISSING_PARAM") {
		t.Fatalf("no redirectUrl: %d %s", pg.Status, pg.Body)
	}
	if pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("nope", clientURL)); pg.Status != http.StatusNotFound || !strings.Contains(pg.Body, "M_NOT_FOUND") {
		t.Fatalf("unknown idp: %d %s", pg.Status, pg.Body)
	}
	if p.TokenRequests() != 0 {
		t.Fatalf("%d code exchanges", p.TokenRequests())
	}
}

// Each bad answer of the provider is refused at the callback with
// M_FORBIDDEN, and the browser never reaches the client.
func TestSSOCallbackRefusals(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, nil, p)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.SignIn("sub-dave", map[string]any{"preferred_username": "dave"})
	cases := []struct {
		name   string
		mutate func(jwt.MapClaims)
		sign   func(jwt.MapClaims) string
	}{
		{name: "expired", mutate: func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }},
		{name: "not yet valid", mutate: func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }},
		{name: "wrong audience", mutate: func(c jwt.MapClaims) { c["aud"] = "another-client" }},
		{name: "several audiences without azp", mutate: func(c jwt.MapClaims) { c["aud"] = []string{p.ClientID, "another"} }},
		{name: "wrong issuer", mutate: func(c jwt.MapClaims) { c["iss"] = "http://evil.test" }},
		{name: "wrong nonce", mutate: func(c jwt.MapClaims) { c["nonce"] = "replayed-from-elsewhere" }},
		{name: "no nonce", mutate: func(c jwt.MapClaims) { delete(c, "nonce") }},
		{name: "no subject", mutate: func(c jwt.MapClaims) { delete(c, "sub") }},
		{name: "unknown key", sign: func(c jwt.MapClaims) string { return ssotest.Sign(jwt.SigningMethodRS256, otherKey, "other", c) }},
		{name: "foreign key under the provider's kid", sign: func(c jwt.MapClaims) string {
			return ssotest.Sign(jwt.SigningMethodRS256, otherKey, p.KeyID, c)
		}},
		{name: "alg none", sign: ssotest.Unsigned},
		{name: "HS256 with the client secret", sign: func(c jwt.MapClaims) string {
			return ssotest.Sign(jwt.SigningMethodHS256, []byte(p.ClientSecret), p.KeyID, c)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p.Mutate(c.mutate)
			p.SignWith(c.sign)
			defer func() { p.Mutate(nil); p.SignWith(nil) }()
			mustRefusedAtCallback(t, s, "idp1")
		})
	}

	t.Run("the provider refuses", func(t *testing.T) {
		p.SignIn("", nil)
		defer p.SignIn("sub-dave", map[string]any{"preferred_username": "dave"})
		mustRefusedAtCallback(t, s, "idp1")
	})

	t.Run("no refused answer created an account", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, v3+"/register/available?username=dave", "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("a refused flow created @dave: %s", res.Raw)
		}
	})

	// The callback URL the provider sent: state and code, captured by
	// stopping the browser before Parley's callback.
	capture := func(t *testing.T, b *browser) string {
		t.Helper()
		b.http.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/_synapse/client/oidc/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}
		pg := b.get(t, s.URL+ssoRedirectPath("idp1", clientURL))
		if pg.Status != http.StatusFound || !strings.Contains(pg.Location, "/_synapse/client/oidc/callback?") {
			t.Fatalf("%d %s", pg.Status, pg.Location)
		}
		b.http.CheckRedirect = nil
		return pg.Location
	}
	t.Run("a callback without the browser's state cookie", func(t *testing.T) {
		cb := capture(t, newBrowser(t))
		// Another browser (the victim of a login CSRF) follows the link.
		pg := newBrowser(t).get(t, cb)
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "M_FORBIDDEN") {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
	})
	t.Run("a replayed callback", func(t *testing.T) {
		b := newBrowser(t)
		cb := capture(t, b)
		b.http.CheckRedirect = newBrowser(t).http.CheckRedirect
		if pg := b.get(t, cb); pg.Status != http.StatusFound || !strings.HasPrefix(pg.Location, clientURL) {
			t.Fatalf("first: %d %s %s", pg.Status, pg.Location, pg.Body)
		}
		if pg := b.get(t, cb); pg.Status != http.StatusForbidden {
			t.Fatalf("replay: %d %s", pg.Status, pg.Body)
		}
	})
	t.Run("a state made up", func(t *testing.T) {
		pg := newBrowser(t).get(t, s.URL+"/_synapse/client/oidc/callback?state=made-up&code=x")
		if pg.Status != http.StatusForbidden {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
	})
}

// Starting flows counts against the IP's login rate limit.
func TestSSORedirectRateLimited(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.RateLimits.Enabled = true }, p)
	limited := false
	for i := 0; i < 50 && !limited; i++ {
		pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", clientURL))
		limited = pg.Status == http.StatusTooManyRequests && strings.Contains(pg.Body, "M_LIMIT_EXCEEDED")
	}
	if !limited {
		t.Fatal("50 flows from one address were never limited")
	}
}

// A provider on loopback is refused without auth.allow_private_addresses.
func TestSSOPrivateProviderRefused(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.Auth.AllowPrivateAddresses = false }, p)
	p.SignIn("sub", nil)
	pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp1", clientURL))
	if pg.Status != http.StatusBadGateway || pg.Location != "" || p.TokenRequests() != 0 {
		t.Fatalf("%d %q %s", pg.Status, pg.Location, pg.Body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// With passwords off, user-interactive auth offers m.login.sso only, and
// the fallback page completes it through the provider for the session's
// own user.
func TestSSOUserInteractiveAuth(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.Auth.Password.Enabled = false }, p)

	t.Run("passwords are off", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, v3+"/login", "", nil)
		if strings.Contains(string(res.Raw), `"m.login.password"`) {
			t.Fatalf("flows %s", res.Raw)
		}
		res = loginPassword(t, s, "nobody", pw, nil)
		if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("password login: %d %s", res.Status, res.Raw)
		}
		caps := s.Do(t, http.MethodGet, v3+"/capabilities", "", nil)
		if !strings.Contains(string(caps.Raw), `"m.change_password":{"enabled":false}`) {
			t.Fatalf("capabilities %s", caps.Raw)
		}
	})

	p.SignIn("sub-erin", map[string]any{"preferred_username": "erin"})
	login := redeem(t, s, ssoLogin(t, s, newBrowser(t), ""))
	apptest.MustStatus(t, login, http.StatusOK)
	token := login.String("access_token")
	// A second device to delete.
	p.SignIn("sub-erin", nil)
	second := redeem(t, s, ssoLogin(t, s, newBrowser(t), ""))
	apptest.MustStatus(t, second, http.StatusOK)
	path := v3 + "/devices/" + second.String("device_id")

	first := s.Do(t, http.MethodDelete, path, token, obj{})
	apptest.MustStatus(t, first, http.StatusUnauthorized)
	if flows, _ := first.Body["flows"].([]any); len(flows) != 1 || !offers(first, "m.login.sso") {
		t.Fatalf("flows %s", first.Raw)
	}
	session := first.String("session")
	fallback := s.URL + v3 + "/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(session)

	t.Run("submitting the stage directly is refused", func(t *testing.T) {
		res := s.Do(t, http.MethodDelete, path, token, obj{"auth": obj{"type": "m.login.sso", "session": session}})
		if res.Status != http.StatusUnauthorized || res.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	})
	t.Run("a confirmation posted from elsewhere is refused", func(t *testing.T) {
		pg := newBrowser(t).post(t, fallback, url.Values{"session": {session}, "idp": {"idp1"}, "csrf": {"guess"}})
		if pg.Status != http.StatusForbidden {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
	})
	t.Run("another user's identity does not complete the stage", func(t *testing.T) {
		p.SignIn("sub-frank", map[string]any{"preferred_username": "frank"})
		redeem(t, s, ssoLogin(t, s, newBrowser(t), "")) // frank exists and is linked
		b := newBrowser(t)
		pg := b.get(t, fallback)
		m := csrfField.FindStringSubmatch(pg.Body)
		if pg.Status != http.StatusOK || m == nil {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
		pg = b.post(t, fallback, url.Values{"session": {session}, "idp": {"idp1"}, "csrf": {m[1]}})
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "another user") {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
		if res := s.Do(t, http.MethodDelete, path, token, obj{"auth": obj{"session": session}}); res.Status != http.StatusUnauthorized {
			t.Fatalf("the device went: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("the user's own identity completes it", func(t *testing.T) {
		p.SignIn("sub-erin", nil)
		b := newBrowser(t)
		pg := b.get(t, fallback)
		if !strings.Contains(pg.Body, "remove devices") || !strings.Contains(pg.Body, "@erin:") {
			t.Fatalf("the page does not say what is confirmed: %s", pg.Body)
		}
		m := csrfField.FindStringSubmatch(pg.Body)
		pg = b.post(t, fallback, url.Values{"session": {session}, "idp": {"idp1"}, "csrf": {m[1]}})
		if pg.Status != http.StatusOK || !strings.Contains(pg.Body, `postMessage("authDone", "*")`) {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
		res := s.Do(t, http.MethodDelete, path, token, obj{"auth": obj{"session": session}})
		apptest.MustStatus(t, res, http.StatusOK)
		if who := s.Do(t, http.MethodGet, v3+"/account/whoami", second.String("access_token"), nil); who.Status != http.StatusUnauthorized {
			t.Fatalf("the deleted device's token still works: %s", who.Raw)
		}
	})
	t.Run("changing the password is refused", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/account/password", token, obj{"new_password": "x"})
		if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	})
}

// With passwords on, user-interactive auth offers the password to users who
// have one and single sign-on to everyone linked to a provider.
func TestSSOUserInteractiveAuthFlows(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, nil, p)
	_, bobToken := s.Register(t, "bob", pw)
	p.SignIn("sub-ivy", map[string]any{"preferred_username": "ivy"})
	ivy := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
	apptest.MustStatus(t, ivy, http.StatusOK)

	stages := func(res apptest.Response) []string {
		var out []string
		for _, f := range res.Body["flows"].([]any) {
			for _, st := range f.(map[string]any)["stages"].([]any) {
				out = append(out, st.(string))
			}
		}
		return out
	}
	bob := s.Do(t, http.MethodPost, v3+"/delete_devices", bobToken, obj{"devices": []string{"X"}})
	if got := stages(bob); len(got) != 2 || got[0] != "m.login.password" || got[1] != "m.login.sso" {
		t.Fatalf("bob's flows %v", got)
	}
	res := s.Do(t, http.MethodPost, v3+"/delete_devices", bobToken, obj{"devices": []string{"X"},
		"auth": passwordAuth(bob.String("session"), "bob", pw)})
	apptest.MustStatus(t, res, http.StatusOK)
	ivyRes := s.Do(t, http.MethodPost, v3+"/delete_devices", ivy.String("access_token"), obj{"devices": []string{"X"}})
	if got := stages(ivyRes); len(got) != 1 || got[0] != "m.login.sso" {
		t.Fatalf("ivy's flows %v", got)
	}
}

// Providers differ: one signs ID tokens with ES256 and takes the client
// secret only in the form; one whose discovery document names another
// issuer is not used at all.
func TestSSOProviderVariants(t *testing.T) {
	es, liar := ssotest.StartES256(t), ssotest.Start(t)
	liar.ClaimIssuer("http://issuer.elsewhere.test")
	s := ssoServer(t, nil, es, liar)

	es.SignIn("es-judy", map[string]any{"preferred_username": "judy", "name": "Judy"})
	res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
	if res.String("user_id") != "@judy:"+apptest.ServerName {
		t.Fatalf("ES256 provider: %d %s", res.Status, res.Raw)
	}

	liar.SignIn("sub", map[string]any{"preferred_username": "mallory"})
	pg := newBrowser(t).get(t, s.URL+ssoRedirectPath("idp2", clientURL))
	if pg.Status != http.StatusBadGateway || pg.Location != "" || liar.TokenRequests() != 0 {
		t.Fatalf("issuer mismatch: %d %q %s", pg.Status, pg.Location, pg.Body)
	}
}

// required_claim_values keeps people without the claim out, and creates
// no account for them.
func TestSSORequiredClaimValues(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.Auth.OIDC.Providers[0].RequiredClaimValues = "groups=matrix-users" }, p)
	p.SignIn("sub-kim", map[string]any{"preferred_username": "kim", "groups": []string{"staff"}})
	mustRefusedAtCallback(t, s, "idp1")
	if res := s.Do(t, http.MethodGet, v3+"/register/available?username=kim", "", nil); res.Status != http.StatusOK {
		t.Fatalf("a refused person got an account: %s", res.Raw)
	}
	p.SignIn("sub-kim", map[string]any{"preferred_username": "kim", "groups": []string{"staff", "matrix-users"}})
	if res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1")); res.String("user_id") != "@kim:"+apptest.ServerName {
		t.Fatalf("%d %s", res.Status, res.Raw)
	}
}

// Two first logins of one identity at once end in one account: the loser
// of the race gets the winner's account and leaves no other behind.
func TestSSOConcurrentFirstLogin(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, nil, p)
	p.SignIn("sub-lena", map[string]any{"preferred_username": "lena"})
	// Each browser stops before Parley's callback, so that both callbacks
	// can be sent at once.
	type started struct {
		b  *browser
		cb string
	}
	var flows []started
	for range 4 {
		b := newBrowser(t)
		b.http.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/_synapse/client/oidc/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}
		pg := b.get(t, s.URL+ssoRedirectPath("idp1", clientURL))
		if pg.Status != http.StatusFound {
			t.Fatalf("%d %s", pg.Status, pg.Body)
		}
		b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		flows = append(flows, started{b, pg.Location})
	}
	locations := make(chan string, len(flows))
	for _, f := range flows {
		go func() {
			res, err := f.b.http.Get(f.cb)
			if err != nil {
				locations <- "error: " + err.Error()
				return
			}
			res.Body.Close()
			locations <- res.Header.Get("Location")
		}()
	}
	for range flows {
		loc := <-locations
		u, err := url.Parse(loc)
		if err != nil || u.Query().Get("loginToken") == "" {
			t.Fatalf("callback answered %q", loc)
		}
		if res := redeem(t, s, u.Query().Get("loginToken")); res.String("user_id") != "@lena:"+apptest.ServerName {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	}
	for _, extra := range []string{"lena1", "lena2", "lena3"} {
		if res := s.Do(t, http.MethodGet, v3+"/register/available?username="+extra, "", nil); res.Status != http.StatusOK {
			t.Fatalf("@%s was left behind: %s", extra, res.Raw)
		}
	}
}

// userinfo: claims only the userinfo endpoint gives are mapped; a userinfo
// answer about another subject is refused.
func TestSSOUserinfo(t *testing.T) {
	p := ssotest.Start(t)
	s := ssoServer(t, func(c *config.Config) { c.Auth.OIDC.Providers[0].Userinfo = true }, p)
	p.ClaimsOnlyInUserinfo(true, "")
	p.SignIn("sub-nora", map[string]any{"preferred_username": "nora", "name": "Nora N."})
	res := redeem(t, s, ssoLogin(t, s, newBrowser(t), "idp1"))
	prof := s.Do(t, http.MethodGet, v3+"/profile/@nora:"+apptest.ServerName+"/displayname", res.String("access_token"), nil)
	if res.String("user_id") != "@nora:"+apptest.ServerName || prof.String("displayname") != "Nora N." {
		t.Fatalf("%s %s", res.Raw, prof.Raw)
	}
	p.ClaimsOnlyInUserinfo(true, "sub-somebody-else")
	mustRefusedAtCallback(t, s, "idp1")
}
