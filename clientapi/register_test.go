package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func TestRegisterOpen(t *testing.T) {
	s := apptest.Start(t)

	t.Run("no auth gives the dummy flow and a session", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "noauth", "password": pw})
		apptest.MustStatus(t, res, http.StatusUnauthorized)
		if !offers(res, "m.login.dummy") || res.String("session") == "" {
			t.Fatalf("body %s lacks the dummy flow or a session", res.Raw)
		}
		if _, ok := res.Body["params"]; !ok {
			t.Fatalf("body %s lacks params", res.Raw)
		}
	})
	t.Run("dummy stage registers and logs in", func(t *testing.T) {
		res := withUIA(t, s, http.MethodPost, v3+"/register", "", obj{"username": "alice", "password": pw, "initial_device_display_name": "Alice's phone"},
			"m.login.dummy", func(session string) obj { return obj{"type": "m.login.dummy", "session": session} })
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") != "@alice:"+apptest.ServerName || res.String("access_token") == "" || res.String("device_id") == "" {
			t.Fatalf("register response %s", res.Raw)
		}
		who := s.Do(t, http.MethodGet, v3+"/account/whoami", res.String("access_token"), nil)
		apptest.MustStatus(t, who, http.StatusOK)
		if who.String("user_id") != "@alice:"+apptest.ServerName || who.String("device_id") != res.String("device_id") || who.Body["is_guest"] != false {
			t.Fatalf("whoami %s", who.Raw)
		}
		dev := s.Do(t, http.MethodGet, v3+"/devices/"+res.String("device_id"), res.String("access_token"), nil)
		if dev.String("display_name") != "Alice's phone" {
			t.Fatalf("device %s lacks the initial display name", dev.Raw)
		}
	})
	t.Run("upper-case user name is registered lower-case", func(t *testing.T) {
		uid, _ := s.Register(t, "BobSmith", pw)
		if uid != "@bobsmith:"+apptest.ServerName {
			t.Fatalf("user id %s", uid)
		}
	})

	cases := []struct {
		name    string
		body    any
		status  int
		errcode string
	}{
		{"reused user name", obj{"username": "alice", "password": pw, "auth": obj{"type": "m.login.dummy"}}, 400, "M_USER_IN_USE"},
		{"reused user name in another case", obj{"username": "ALICE", "password": pw}, 400, "M_USER_IN_USE"},
		{"invalid user name", obj{"username": "no spaces!", "password": pw}, 400, "M_INVALID_USERNAME"},
		{"user id of another server", obj{"username": "@eve:elsewhere.test", "password": pw}, 400, "M_INVALID_USERNAME"},
		{"not JSON", "{nope", 400, "M_NOT_JSON"},
		{"wrong field type", obj{"username": 12}, 400, "M_BAD_JSON"},
		{"unknown UIA session", obj{"username": "carol", "password": pw, "auth": obj{"type": "m.login.dummy", "session": "nosuchsession"}}, 400, "M_UNKNOWN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, v3+"/register", "", c.body)
			if res.Status != c.status || res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Raw, c.status, c.errcode)
			}
		})
	}
	t.Run("a stage of no flow is refused inside the 401", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "dave", "password": pw, "auth": obj{"type": "m.login.password", "password": "x"}})
		if res.Status != http.StatusUnauthorized || res.Errcode() != "M_FORBIDDEN" || !offers(res, "m.login.dummy") {
			t.Fatalf("got %d %s, want 401 M_FORBIDDEN with the flows", res.Status, res.Raw)
		}
	})
	t.Run("inhibit_login returns no token", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "quiet", "password": pw, "inhibit_login": true, "auth": obj{"type": "m.login.dummy"}})
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") != "@quiet:"+apptest.ServerName || res.String("access_token") != "" || res.String("device_id") != "" {
			t.Fatalf("register response %s", res.Raw)
		}
		mustLogin(t, s, "quiet", pw, nil)
	})
	t.Run("refresh_token gives an expiring access token", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "fresh", "password": pw, "refresh_token": true, "auth": obj{"type": "m.login.dummy"}})
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("refresh_token") == "" || res.Body["expires_in_ms"] == nil {
			t.Fatalf("register response %s lacks refresh_token / expires_in_ms", res.Raw)
		}
	})
	t.Run("no user name draws one", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"password": pw, "auth": obj{"type": "m.login.dummy"}})
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") == "" {
			t.Fatalf("register response %s", res.Raw)
		}
	})
	t.Run("guests refused unless allowed", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register?kind=guest", "", obj{})
		if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("got %d %s", res.Status, res.Raw)
		}
	})
}

func TestRegisterAvailable(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "taken", pw)
	cases := []struct {
		name, username string
		status         int
		errcode        string
	}{
		{"free name", "free", 200, ""},
		{"taken name", "taken", 400, "M_USER_IN_USE"},
		{"invalid name", "bad%20name", 400, "M_INVALID_USERNAME"},
		{"missing name", "", 400, "M_MISSING_PARAM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, http.MethodGet, v3+"/register/available?username="+c.username, "", nil)
			if res.Status != c.status || res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Raw, c.status, c.errcode)
			}
			if c.status == 200 && res.Body["available"] != true {
				t.Fatalf("body %s", res.Raw)
			}
		})
	}
}

func TestRegisterClosedAndGuests(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) {
		c.Registration.Mode = config.RegistrationClosed
		c.Registration.AllowGuests = true
	})
	t.Run("closed registration is forbidden", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "x", "password": pw, "auth": obj{"type": "m.login.dummy"}})
		if res.Status != http.StatusForbidden || res.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("got %d %s", res.Status, res.Raw)
		}
	})
	t.Run("guest registration when allowed", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/register?kind=guest", "", obj{"username": "ignored"})
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("user_id") == "@ignored:"+apptest.ServerName {
			t.Fatal("guest got the requested user name; the spec says it is ignored")
		}
		who := s.Do(t, http.MethodGet, v3+"/account/whoami", res.String("access_token"), nil)
		if who.Body["is_guest"] != true {
			t.Fatalf("whoami %s, want is_guest true", who.Raw)
		}
	})
}
