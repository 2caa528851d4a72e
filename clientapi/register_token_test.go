package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func TestRegisterWithToken(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Registration.Mode = config.RegistrationToken })
	exec(t, s, `INSERT INTO registration_tokens (token, uses_allowed, created_ts) VALUES ('once', 1, 0), ('many', NULL, 0)`)
	exec(t, s, `INSERT INTO registration_tokens (token, expiry_ts, created_ts) VALUES ('stale', 1, 0)`)
	validity := "/_matrix/client/v1/register/m.login.registration_token/validity?token="

	valid := []struct {
		token string
		want  bool
	}{{"once", true}, {"many", true}, {"stale", false}, {"unknown", false}, {"bad%20token", false}}
	for _, c := range valid {
		t.Run("validity of "+c.token, func(t *testing.T) {
			r := s.Do(t, http.MethodGet, validity+c.token, "", nil)
			apptest.MustStatus(t, r, http.StatusOK)
			if r.Body["valid"] != c.want {
				t.Fatalf("valid = %v, want %v", r.Body["valid"], c.want)
			}
		})
	}
	t.Run("dummy stage is not offered", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "x", "password": pw, "auth": obj{"type": "m.login.dummy"}})
		if r.Status != 401 || r.Errcode() != "M_FORBIDDEN" || !offers(r, "m.login.registration_token") {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
	t.Run("wrong token fails inside the 401", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "x", "password": pw, "auth": obj{"type": "m.login.registration_token", "token": "stale"}})
		if r.Status != 401 || r.Errcode() != "M_UNAUTHORIZED" || r.String("session") == "" {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
	reg := func(name, token string) apptest.Response {
		return withUIA(t, s, http.MethodPost, v3+"/register", "", obj{"username": name, "password": pw}, "m.login.registration_token",
			func(session string) obj {
				return obj{"type": "m.login.registration_token", "token": token, "session": session}
			})
	}
	t.Run("single-use token registers once", func(t *testing.T) {
		apptest.MustStatus(t, reg("first", "once"), http.StatusOK)
		r := reg("second", "once")
		if r.Status != 401 || r.Errcode() != "M_UNAUTHORIZED" {
			t.Fatalf("second use: %d %s", r.Status, r.Raw)
		}
		if v := s.Do(t, http.MethodGet, validity+"once", "", nil); v.Body["valid"] != false {
			t.Fatalf("spent token still valid: %s", v.Raw)
		}
	})
	t.Run("unlimited token registers again", func(t *testing.T) {
		apptest.MustStatus(t, reg("third", "many"), http.StatusOK)
		apptest.MustStatus(t, reg("fourth", "many"), http.StatusOK)
	})
}

func TestValidityOutsideTokenMode(t *testing.T) {
	s := apptest.Start(t)
	r := s.Do(t, http.MethodGet, "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc", "", nil)
	if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
		t.Fatalf("got %d %s, want 403 M_FORBIDDEN", r.Status, r.Raw)
	}
}
