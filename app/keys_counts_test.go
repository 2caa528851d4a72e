package app_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// TestRecreatedDeviceShowsItsOwnKeyCounts: a device logged out (deleted,
// its one-time keys with it) and logged in again under the same id has
// no keys; its first sync must not show the counts the old device's last
// sync read (the keys store keeps counts until they change).
func TestRecreatedDeviceShowsItsOwnKeyCounts(t *testing.T) {
	s := apptest.Start(t)
	const v3, pw = "/_matrix/client/v3", "counts-password"
	s.Register(t, "carol", pw)
	login := func() string {
		t.Helper()
		res := s.Do(t, http.MethodPost, v3+"/login", "", map[string]any{
			"type":       "m.login.password",
			"identifier": map[string]any{"type": "m.id.user", "user": "carol"},
			"password":   pw,
			"device_id":  "PHONE",
		})
		apptest.MustStatus(t, res, http.StatusOK)
		return res.String("access_token")
	}
	otkCount := func(token string) float64 {
		t.Helper()
		res := s.Do(t, http.MethodGet, v3+"/sync?timeout=0", token, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		counts, _ := res.Body["device_one_time_keys_count"].(map[string]any)
		n, _ := counts["curve25519"].(float64)
		return n
	}

	token := login()
	otks := map[string]any{}
	for _, k := range []string{"AAA", "BBB", "CCC"} {
		otks["curve25519:"+k] = k // unsigned: the device has no keys to sign with
	}
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/keys/upload", token, map[string]any{"one_time_keys": otks}), http.StatusOK)
	if n := otkCount(token); n != 3 {
		t.Fatalf("after the upload: %v one-time keys, want 3", n)
	}
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout", token, map[string]any{}), http.StatusOK)
	token = login()
	if n := otkCount(token); n != 0 {
		t.Errorf("the device created again shows %v one-time keys, want 0 (the deleted device's)", n)
	}
}
