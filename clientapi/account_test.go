package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestChangePassword(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	s.Register(t, "bob", "bobs password")
	keep, _ := mustLogin(t, s, "alice", pw, nil)
	other, _ := mustLogin(t, s, "alice", pw, nil)
	path := v3 + "/account/password"

	first := s.Do(t, http.MethodPost, path, keep, obj{"new_password": "new one"})
	apptest.MustStatus(t, first, http.StatusUnauthorized)
	if !offers(first, "m.login.password") {
		t.Fatalf("401 %s lacks the password flow", first.Raw)
	}
	session := first.String("session")

	fails := []struct {
		name string
		auth obj
	}{
		{"wrong password", passwordAuth(session, "alice", "wrong")},
		{"another user's valid password", passwordAuth(session, "bob", "bobs password")},
		{"a stage that is not offered", obj{"type": "m.login.dummy", "session": session}},
	}
	for _, c := range fails {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, http.MethodPost, path, keep, obj{"new_password": "new one", "auth": c.auth})
			if r.Status != 401 || r.Errcode() != "M_FORBIDDEN" || r.String("session") != session {
				t.Fatalf("got %d %s, want 401 M_FORBIDDEN in session %s", r.Status, r.Raw, session)
			}
		})
	}
	t.Run("session of another user is refused", func(t *testing.T) {
		bt, _ := mustLogin(t, s, "bob", "bobs password", nil)
		r := s.Do(t, http.MethodPost, path, bt, obj{"new_password": "x", "auth": passwordAuth(session, "bob", "bobs password")})
		if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("got %d %s, want 403", r.Status, r.Raw)
		}
	})
	t.Run("session of another operation is refused", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/account/deactivate", keep, obj{"auth": passwordAuth(session, "alice", pw)})
		if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("got %d %s, want 403", r.Status, r.Raw)
		}
	})

	ok := s.Do(t, http.MethodPost, path, keep, obj{"new_password": "new one", "auth": passwordAuth(session, "alice", pw)})
	apptest.MustStatus(t, ok, http.StatusOK)
	t.Run("other devices are logged out by default", func(t *testing.T) {
		if r := s.Do(t, http.MethodGet, v3+"/account/whoami", other, nil); r.Errcode() != "M_UNKNOWN_TOKEN" {
			t.Fatalf("other device: %s", r.Raw)
		}
		apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", keep, nil), http.StatusOK)
	})
	t.Run("only the new password logs in", func(t *testing.T) {
		if r := loginPassword(t, s, "alice", pw, nil); r.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("old password: %s", r.Raw)
		}
		mustLogin(t, s, "alice", "new one", nil)
	})
	t.Run("logout_devices false keeps other devices", func(t *testing.T) {
		third, _ := mustLogin(t, s, "alice", "new one", nil)
		r := withUIA(t, s, http.MethodPost, path, keep, obj{"new_password": "newer", "logout_devices": false}, "m.login.password",
			func(session string) obj { return passwordAuth(session, "alice", "new one") })
		apptest.MustStatus(t, r, http.StatusOK)
		apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", third, nil), http.StatusOK)
	})
}

func TestDeactivate(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	other, _ := mustLogin(t, s, "alice", pw, nil)
	r := withUIA(t, s, http.MethodPost, v3+"/account/deactivate", token, obj{}, "m.login.password",
		func(session string) obj { return passwordAuth(session, "alice", pw) })
	apptest.MustStatus(t, r, http.StatusOK)
	if r.String("id_server_unbind_result") == "" {
		t.Fatalf("response %s lacks id_server_unbind_result", r.Raw)
	}
	checks := []struct {
		name    string
		res     func() apptest.Response
		errcode string
	}{
		{"token revoked", func() apptest.Response { return s.Do(t, http.MethodGet, v3+"/account/whoami", token, nil) }, "M_UNKNOWN_TOKEN"},
		{"other device revoked", func() apptest.Response { return s.Do(t, http.MethodGet, v3+"/account/whoami", other, nil) }, "M_UNKNOWN_TOKEN"},
		{"login refused", func() apptest.Response { return loginPassword(t, s, "alice", pw, nil) }, "M_USER_DEACTIVATED"},
		{"user name never reused", func() apptest.Response {
			return s.Do(t, http.MethodPost, v3+"/register", "", obj{"username": "alice", "password": pw, "auth": obj{"type": "m.login.dummy"}})
		}, "M_USER_IN_USE"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if res := c.res(); res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %s", res.Status, res.Raw, c.errcode)
			}
		})
	}
}
