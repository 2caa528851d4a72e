package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func deviceIDs(t *testing.T, s *apptest.Server, token string) map[string]map[string]any {
	t.Helper()
	res := s.Do(t, http.MethodGet, v3+"/devices", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	out := map[string]map[string]any{}
	for _, d := range res.Body["devices"].([]any) {
		m := d.(map[string]any)
		out[m["device_id"].(string)] = m
	}
	return out
}

func TestDevices(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	s.Register(t, "bob", pw)
	token, dev := mustLogin(t, s, "alice", pw, obj{"initial_device_display_name": "phone"})
	_, second := mustLogin(t, s, "alice", pw, nil)
	_, third := mustLogin(t, s, "alice", pw, nil)
	bobToken, bobDev := mustLogin(t, s, "bob", pw, nil)

	t.Run("list shows the user's devices only", func(t *testing.T) {
		got := deviceIDs(t, s, token)
		if got[dev]["display_name"] != "phone" || got[second] == nil || got[third] == nil || got[bobDev] != nil {
			t.Fatalf("devices %v", got)
		}
	})
	t.Run("get, rename, get", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/devices/"+dev, token, obj{"display_name": "old phone"}), http.StatusOK)
		r := s.Do(t, http.MethodGet, v3+"/devices/"+dev, token, nil)
		if r.String("display_name") != "old phone" || r.String("device_id") != dev {
			t.Fatalf("device %s", r.Raw)
		}
	})
	notFound := []struct {
		name, method, path string
		token              string
		body               any
	}{
		{"get unknown device", http.MethodGet, "/devices/NOPE", token, nil},
		{"get another user's device", http.MethodGet, "/devices/" + bobDev, token, nil},
		{"rename unknown device", http.MethodPut, "/devices/NOPE", token, obj{"display_name": "x"}},
		{"delete unknown device", http.MethodDelete, "/devices/NOPE", token, obj{}},
	}
	for _, c := range notFound {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(t, c.method, v3+c.path, c.token, c.body)
			if r.Status != 404 || r.Errcode() != "M_NOT_FOUND" {
				t.Fatalf("got %d %s, want 404 M_NOT_FOUND", r.Status, r.Raw)
			}
		})
	}
	t.Run("delete one device behind UIA", func(t *testing.T) {
		r := withUIA(t, s, http.MethodDelete, v3+"/devices/"+second, token, obj{}, "m.login.password",
			func(session string) obj { return passwordAuth(session, "alice", pw) })
		apptest.MustStatus(t, r, http.StatusOK)
		if deviceIDs(t, s, token)[second] != nil {
			t.Fatal("deleted device still listed")
		}
	})
	t.Run("delete_devices behind UIA", func(t *testing.T) {
		r := withUIA(t, s, http.MethodPost, v3+"/delete_devices", token, obj{"devices": []string{third, bobDev}}, "m.login.password",
			func(session string) obj { return passwordAuth(session, "alice", pw) })
		apptest.MustStatus(t, r, http.StatusOK)
		if deviceIDs(t, s, token)[third] != nil {
			t.Fatal("deleted device still listed")
		}
		// Another user's device id in the list is not touched.
		apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", bobToken, nil), http.StatusOK)
	})
	t.Run("delete_devices needs the list", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, v3+"/delete_devices", token, obj{})
		if r.Errcode() != "M_MISSING_PARAM" {
			t.Fatalf("got %s", r.Raw)
		}
	})
}

func TestRestartKeepsAccountsAndDevices(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	token, dev := mustLogin(t, s, "alice", pw, obj{"initial_device_display_name": "laptop"})
	apptest.MustStatus(t, s.Do(t, http.MethodGet, v3+"/account/whoami", token, nil), http.StatusOK)

	s.Restart(t)

	who := s.Do(t, http.MethodGet, v3+"/account/whoami", token, nil)
	apptest.MustStatus(t, who, http.StatusOK)
	if who.String("device_id") != dev {
		t.Fatalf("whoami after restart %s", who.Raw)
	}
	d := deviceIDs(t, s, token)[dev]
	if d == nil || d["display_name"] != "laptop" {
		t.Fatalf("device after restart %v", d)
	}
	// The coalesced last-seen record was written when the server closed.
	if d["last_seen_ip"] != "127.0.0.1" || d["last_seen_ts"] == nil {
		t.Fatalf("device after restart %v lacks last_seen_ip / last_seen_ts", d)
	}
	mustLogin(t, s, "alice", pw, nil)
}
