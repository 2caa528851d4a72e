package clientapi_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func TestLoginPassword(t *testing.T) {
	s := apptest.Start(t)
	uid, _ := s.Register(t, "alice", pw)

	t.Run("GET /login lists password and token flows", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, v3+"/login", "", nil)
		apptest.MustStatus(t, res, http.StatusOK)
		flows, _ := res.Body["flows"].([]any)
		types := map[any]bool{}
		for _, f := range flows {
			types[f.(map[string]any)["type"]] = true
		}
		if !types["m.login.password"] || !types["m.login.token"] {
			t.Fatalf("flows %s", res.Raw)
		}
	})

	ok := []struct {
		name string
		body obj
	}{
		{"localpart identifier", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": "alice"}, "password": pw}},
		{"full user id identifier", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": uid}, "password": pw}},
		{"upper-case localpart", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": "ALICE"}, "password": pw}},
		{"legacy user field", obj{"type": "m.login.password", "user": "alice", "password": pw}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, v3+"/login", "", c.body)
			apptest.MustStatus(t, res, http.StatusOK)
			if res.String("user_id") != uid || res.String("access_token") == "" || res.String("device_id") == "" {
				t.Fatalf("login response %s", res.Raw)
			}
			if _, ok := res.Body["expires_in_ms"]; ok {
				t.Fatal("a login without refresh_token got an expiring token")
			}
		})
	}

	bad := []struct {
		name    string
		body    any
		status  int
		errcode string
	}{
		{"wrong password", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": "alice"}, "password": "wrong"}, 403, "M_FORBIDDEN"},
		{"unknown user", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": "nobody"}, "password": pw}, 403, "M_FORBIDDEN"},
		{"user of another server", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.user", "user": "@alice:elsewhere.test"}, "password": pw}, 403, "M_FORBIDDEN"},
		{"third-party identifier", obj{"type": "m.login.password", "identifier": obj{"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}, "password": pw}, 400, "M_UNRECOGNIZED"},
		{"unknown login type", obj{"type": "m.login.magic"}, 400, "M_UNKNOWN"},
		{"bad JSON", "[1,2", 400, "M_NOT_JSON"},
		{"password of the wrong type", obj{"type": "m.login.password", "user": "alice", "password": 5}, 400, "M_BAD_JSON"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, v3+"/login", "", c.body)
			if res.Status != c.status || res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Raw, c.status, c.errcode)
			}
		})
	}
}

func TestLoginDeviceReuse(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	first, dev := mustLogin(t, s, "alice", pw, obj{"device_id": "MYDEVICE", "initial_device_display_name": "laptop"})
	if dev != "MYDEVICE" {
		t.Fatalf("device id %s, want MYDEVICE", dev)
	}
	apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", first, nil), http.StatusOK)
	second, _ := mustLogin(t, s, "alice", pw, obj{"device_id": "MYDEVICE"})

	res := s.Do(t, http.MethodGet, v3+"/account/whoami", first, nil)
	if res.Status != http.StatusUnauthorized || res.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Fatalf("old token of a reused device: %d %s, want 401 M_UNKNOWN_TOKEN", res.Status, res.Raw)
	}
	devs := s.Do(t, http.MethodGet, v3+"/devices", second, nil)
	count := 0
	for _, d := range devs.Body["devices"].([]any) {
		if d.(map[string]any)["device_id"] == "MYDEVICE" {
			count++
			if d.(map[string]any)["display_name"] != "laptop" {
				t.Fatalf("reused device lost its name: %s", devs.Raw)
			}
		}
	}
	if count != 1 {
		t.Fatalf("devices %s: want MYDEVICE once", devs.Raw)
	}
}

func TestAccessTokens(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	cases := []struct {
		name    string
		path    string
		header  string
		status  int
		errcode string
	}{
		{"bearer header", "/account/whoami", "Bearer " + token, 200, ""},
		{"query parameter", "/account/whoami?access_token=" + token, "", 200, ""},
		{"missing token", "/account/whoami", "", 401, "M_MISSING_TOKEN"},
		{"unknown token", "/account/whoami", "Bearer pat_nonsense", 401, "M_UNKNOWN_TOKEN"},
		{"not a bearer header", "/account/whoami", "Basic abc", 401, "M_MISSING_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+v3+c.path, nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Errcode string `json:"errcode"`
			}
			_ = json.NewDecoder(res.Body).Decode(&body)
			if res.StatusCode != c.status || body.Errcode != c.errcode {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body.Errcode, c.status, c.errcode)
			}
		})
	}
	t.Run("errcodes of bad tokens", func(t *testing.T) {
		if r := s.Do(t, http.MethodGet, v3+"/account/whoami", "", nil); r.Errcode() != "M_MISSING_TOKEN" {
			t.Fatalf("missing: %s", r.Raw)
		}
		r := s.Do(t, http.MethodGet, v3+"/account/whoami", "pat_nonsense", nil)
		if r.Errcode() != "M_UNKNOWN_TOKEN" || r.Body["soft_logout"] == true {
			t.Fatalf("unknown: %s, want M_UNKNOWN_TOKEN without soft_logout", r.Raw)
		}
	})
	t.Run("expired token is a soft logout", func(t *testing.T) {
		res := loginPassword(t, s, "alice", pw, obj{"refresh_token": true})
		apptest.MustStatus(t, res, http.StatusOK)
		exec(t, s, `UPDATE access_tokens SET expires_ts = 1 WHERE device_id = $1`, res.String("device_id"))
		r := s.Do(t, http.MethodGet, v3+"/account/whoami", res.String("access_token"), nil)
		if r.Status != 401 || r.Errcode() != "M_UNKNOWN_TOKEN" || r.Body["soft_logout"] != true {
			t.Fatalf("expired: %d %s, want 401 M_UNKNOWN_TOKEN soft_logout true", r.Status, r.Raw)
		}
		// The refresh token still gets a working access token.
		ref := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": res.String("refresh_token")})
		apptest.MustStatus(t, ref, http.StatusOK)
		apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", ref.String("access_token"), nil), http.StatusOK)
	})
}

func TestRefresh(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	login := loginPassword(t, s, "alice", pw, obj{"refresh_token": true})
	apptest.MustStatus(t, login, http.StatusOK)
	if login.String("refresh_token") == "" || login.Body["expires_in_ms"] == nil {
		t.Fatalf("login %s lacks refresh_token / expires_in_ms", login.Raw)
	}
	r0 := login.String("refresh_token")

	first := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": r0})
	apptest.MustStatus(t, first, http.StatusOK)
	if first.String("access_token") == "" || first.String("refresh_token") == "" || first.String("refresh_token") == r0 {
		t.Fatalf("refresh %s", first.Raw)
	}
	t.Run("old access token is replaced", func(t *testing.T) {
		r := s.Do(t, http.MethodGet, v3+"/account/whoami", login.String("access_token"), nil)
		if r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("old access token: %s", r.Raw)
		}
	})
	// The client lost the answer and retries with the old refresh token.
	second := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": r0})
	apptest.MustStatus(t, second, http.StatusOK)
	t.Run("new access token works and keeps the device", func(t *testing.T) {
		who := s.Do(t, http.MethodGet, v3+"/account/whoami", second.String("access_token"), nil)
		apptest.MustStatus(t, who, http.StatusOK)
		if who.String("device_id") != login.String("device_id") {
			t.Fatalf("device %s, want %s", who.String("device_id"), login.String("device_id"))
		}
	})
	t.Run("old refresh token is revoked once the new access token was used", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": r0})
		if r.Status != 401 || r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("old refresh token: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("abandoned sibling pair is revoked too", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": first.String("refresh_token")})
		if r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("sibling refresh token: %s", r.Raw)
		}
	})
	t.Run("unknown and missing refresh tokens", func(t *testing.T) {
		if r := s.Do(t, http.MethodPost, v3+"/refresh", "", obj{"refresh_token": "prt_nonsense"}); r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("unknown: %s", r.Raw)
		}
		if r := s.Do(t, http.MethodPost, v3+"/refresh", "", "nope"); r.Errcode() != "M_NOT_JSON" {
			t.Fatalf("bad body: %s", r.Raw)
		}
	})
}

func TestLoginToken(t *testing.T) {
	s := apptest.Start(t)
	uid, token := s.Register(t, "alice", pw)
	path := "/_matrix/client/v1/login/get_token"

	t.Run("wrong password is retried inside the session", func(t *testing.T) {
		first := s.Do(t, http.MethodPost, path, token, obj{})
		apptest.MustStatus(t, first, http.StatusUnauthorized)
		r := s.Do(t, http.MethodPost, path, token, obj{"auth": passwordAuth(first.String("session"), "alice", "wrong")})
		if r.Status != 401 || r.Errcode() != "M_FORBIDDEN" || r.String("session") != first.String("session") {
			t.Fatalf("got %d %s, want 401 M_FORBIDDEN in the same session", r.Status, r.Raw)
		}
	})
	res := withUIA(t, s, http.MethodPost, path, token, obj{}, "m.login.password",
		func(session string) obj { return passwordAuth(session, "alice", pw) })
	apptest.MustStatus(t, res, http.StatusOK)
	lt := res.String("login_token")
	if lt == "" || res.Body["expires_in_ms"] == nil {
		t.Fatalf("get_token %s", res.Raw)
	}
	login := s.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.token", "token": lt})
	apptest.MustStatus(t, login, http.StatusOK)
	if login.String("user_id") != uid {
		t.Fatalf("token login as %s, want %s", login.String("user_id"), uid)
	}
	again := s.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.token", "token": lt})
	if again.Status != 403 || again.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("reused login token: %d %s, want 403", again.Status, again.Raw)
	}
	t.Run("every token needs a new prompt", func(t *testing.T) {
		// The session that produced a token is spent (spec: servers MUST
		// always re-prompt for this endpoint).
		first := s.Do(t, http.MethodPost, path, token, obj{})
		apptest.MustStatus(t, first, http.StatusUnauthorized)
		done := withUIA(t, s, http.MethodPost, path, token, obj{}, "m.login.password",
			func(session string) obj { return passwordAuth(session, "alice", pw) })
		apptest.MustStatus(t, done, http.StatusOK)
		r := s.Do(t, http.MethodPost, path, token, obj{"auth": obj{"type": "m.login.password", "session": first.String("session"), "identifier": obj{"type": "m.id.user", "user": "alice"}, "password": pw}})
		apptest.MustStatus(t, r, http.StatusOK)
		replay := s.Do(t, http.MethodPost, path, token, obj{"auth": obj{"session": first.String("session")}})
		if replay.Status != http.StatusBadRequest {
			t.Fatalf("replayed spent session: %d %s, want 400", replay.Status, replay.Raw)
		}
	})
}

func TestLogout(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	a, _ := mustLogin(t, s, "alice", pw, nil)
	b, _ := mustLogin(t, s, "alice", pw, nil)
	c, _ := mustLogin(t, s, "alice", pw, nil)

	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout", a, nil), http.StatusOK)
	if r := s.Do(t, http.MethodGet, v3+"/account/whoami", a, nil); r.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Fatalf("logged-out token: %s", r.Raw)
	}
	apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", b, nil), http.StatusOK)
	if r := s.Do(t, http.MethodPost, v3+"/logout", a, nil); r.Errcode() != "M_UNKNOWN_TOKEN" {
		t.Fatalf("second logout: %s", r.Raw)
	}

	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout/all", b, obj{}), http.StatusOK)
	for i, tok := range []string{b, c} {
		if r := s.Do(t, http.MethodGet, v3+"/account/whoami", tok, nil); r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("token %d after logout/all: %s", i, r.Raw)
		}
	}
	d, _ := mustLogin(t, s, "alice", pw, nil)
	devs := s.Do(t, http.MethodGet, v3+"/devices", d, nil)
	if n := len(devs.Body["devices"].([]any)); n != 1 {
		t.Fatalf("%d devices after logout/all and one login, want 1", n)
	}
}

func TestLoginRateLimit(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.RateLimits.Enabled = true })
	_, token := s.Register(t, "alice", pw)
	t.Run("get_token is limited per account", func(t *testing.T) {
		var last apptest.Response
		for i := 0; i < 5; i++ {
			last = s.Do(t, http.MethodPost, "/_matrix/client/v1/login/get_token", token, obj{})
			if last.Status == http.StatusTooManyRequests {
				break
			}
		}
		if last.Errcode() != "M_LIMIT_EXCEEDED" {
			t.Fatalf("get_token never limited: %s", last.Raw)
		}
	})
	var limited apptest.Response
	for i := 0; i < 20; i++ {
		r := loginPassword(t, s, "alice", "wrong", nil)
		if r.Status == http.StatusTooManyRequests {
			limited = r
			break
		}
		if r.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("attempt %d: %s", i, r.Raw)
		}
	}
	if limited.Status != http.StatusTooManyRequests {
		t.Fatal("20 failed logins in a row were never rate limited")
	}
	ms, ok := limited.Body["retry_after_ms"].(float64)
	if limited.Errcode() != "M_LIMIT_EXCEEDED" || !ok || ms <= 0 {
		t.Fatalf("limited response %s", limited.Raw)
	}
	if sec, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || sec < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	t.Run("registration is limited per IP too", func(t *testing.T) {
		var last apptest.Response
		for i := 0; i < 20; i++ {
			last = s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "r" + strconv.Itoa(i), "password": pw})
			if last.Status == http.StatusTooManyRequests {
				break
			}
		}
		if last.Errcode() != "M_LIMIT_EXCEEDED" {
			t.Fatalf("registration never limited: %s", last.Raw)
		}
	})
}
