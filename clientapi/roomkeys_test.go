package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestRoomKeyBackup(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	const room = "!room:parley.test"
	rk := func(v, rest string) string {
		return v3 + "/room_keys/keys" + rest + "?version=" + url.QueryEscape(v)
	}
	sessionPath := "/" + url.PathEscape(room) + "/sess1"
	key := func(fmi, fwd int, verified bool, data string) obj {
		return obj{"first_message_index": fmi, "forwarded_count": fwd, "is_verified": verified,
			"session_data": obj{"ciphertext": data}}
	}

	res := s.Do(t, http.MethodGet, v3+"/room_keys/version", alice.token, nil)
	if res.Status != http.StatusNotFound || res.Errcode() != "M_NOT_FOUND" {
		t.Fatalf("no backup yet: %d %s", res.Status, res.Raw)
	}
	authData := obj{"public_key": "abc", "signatures": obj{}}
	res = s.Do(t, http.MethodPost, v3+"/room_keys/version", alice.token,
		obj{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": authData})
	apptest.MustStatus(t, res, http.StatusOK)
	v1 := res.String("version")
	res = s.Do(t, http.MethodGet, v3+"/room_keys/version", alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("version") != v1 || res.Body["count"] != 0.0 || res.String("etag") == "" ||
		canonical(t, res.Body["auth_data"]) != canonical(t, authData) {
		t.Fatalf("current version: %s", res.Raw)
	}
	etag0 := res.String("etag")
	// Bob has no backup of his own, and cannot read Alice's.
	if res := s.Do(t, http.MethodGet, v3+"/room_keys/version/"+v1, bob.token, nil); res.Status != http.StatusNotFound {
		t.Fatalf("bob read alice's backup: %s", res.Raw)
	}

	// Keys at the three levels; etag and count follow.
	res = s.Do(t, http.MethodPut, rk(v1, ""), alice.token, obj{"rooms": obj{room: obj{"sessions": obj{
		"sess1": key(5, 1, false, "a"), "sess2": key(0, 0, false, "b")}}}})
	apptest.MustStatus(t, res, http.StatusOK)
	if res.Body["count"] != 2.0 || res.String("etag") == etag0 {
		t.Fatalf("after two keys: %s", res.Raw)
	}
	etag1 := res.String("etag")
	// A worse key (higher first_message_index) is not kept: etag unchanged.
	res = s.Do(t, http.MethodPut, rk(v1, sessionPath), alice.token, key(7, 0, false, "worse"))
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("etag") != etag1 || res.Body["count"] != 2.0 {
		t.Fatalf("a worse key changed the backup: %s", res.Raw)
	}
	// A verified key beats an unverified one whatever its index.
	res = s.Do(t, http.MethodPut, rk(v1, "/"+url.PathEscape(room)), alice.token, obj{"sessions": obj{"sess1": key(9, 3, true, "verified")}})
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("etag") == etag1 {
		t.Fatalf("a better key left the etag: %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, rk(v1, sessionPath), alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.Body["session_data"].(map[string]any)["ciphertext"] != "verified" || res.Body["is_verified"] != true {
		t.Fatalf("session key: %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, rk(v1, "/"+url.PathEscape(room)), alice.token, nil)
	if len(res.Body["sessions"].(map[string]any)) != 2 {
		t.Fatalf("room keys: %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, rk(v1, ""), alice.token, nil)
	if len(res.Body["rooms"].(map[string]any)[room].(map[string]any)["sessions"].(map[string]any)) != 2 {
		t.Fatalf("all keys: %s", res.Raw)
	}
	// An unknown room has no sessions; an unknown session is 404.
	res = s.Do(t, http.MethodGet, rk(v1, "/"+url.PathEscape("!other:parley.test")), alice.token, nil)
	if res.Status != http.StatusOK || len(res.Body["sessions"].(map[string]any)) != 0 {
		t.Fatalf("unknown room: %s", res.Raw)
	}
	if res := s.Do(t, http.MethodGet, rk(v1, "/"+url.PathEscape(room)+"/nope"), alice.token, nil); res.Status != http.StatusNotFound {
		t.Fatalf("unknown session: %s", res.Raw)
	}

	// A new version becomes current: keys for the old one are refused.
	res = s.Do(t, http.MethodPost, v3+"/room_keys/version", alice.token,
		obj{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": authData})
	apptest.MustStatus(t, res, http.StatusOK)
	v2 := res.String("version")
	if v2 == v1 {
		t.Fatalf("new version %s = old", v2)
	}
	res = s.Do(t, http.MethodPut, rk(v1, sessionPath), alice.token, key(0, 0, true, "x"))
	if res.Status != http.StatusForbidden || res.Errcode() != "M_WRONG_ROOM_KEYS_VERSION" || res.String("current_version") != v2 {
		t.Fatalf("keys for an old version: %d %s", res.Status, res.Raw)
	}
	// The old version still reads.
	if res := s.Do(t, http.MethodGet, rk(v1, sessionPath), alice.token, nil); res.Status != http.StatusOK {
		t.Fatalf("old version's key: %s", res.Raw)
	}

	// Deleting keys changes etag and count.
	res = s.Do(t, http.MethodDelete, rk(v1, sessionPath), alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.Body["count"] != 1.0 {
		t.Fatalf("after deleting a session: %s", res.Raw)
	}

	// auth_data can change, the algorithm cannot.
	newAuth := obj{"public_key": "def"}
	apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/room_keys/version/"+v2, alice.token,
		obj{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": newAuth}), http.StatusOK)
	res = s.Do(t, http.MethodGet, v3+"/room_keys/version/"+v2, alice.token, nil)
	if canonical(t, res.Body["auth_data"]) != canonical(t, newAuth) {
		t.Fatalf("auth_data after update: %s", res.Raw)
	}
	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"update with another algorithm", http.MethodPut, v3 + "/room_keys/version/" + v2,
			obj{"algorithm": "other", "auth_data": newAuth}, 400, "M_INVALID_PARAM"},
		{"update with another version in the body", http.MethodPut, v3 + "/room_keys/version/" + v2,
			obj{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": newAuth, "version": v1}, 400, "M_INVALID_PARAM"},
		{"create without algorithm", http.MethodPost, v3 + "/room_keys/version", obj{"auth_data": newAuth}, 400, "M_MISSING_PARAM"},
		{"keys without version", http.MethodGet, v3 + "/room_keys/keys", nil, 400, "M_MISSING_PARAM"},
		{"keys of an unknown version", http.MethodGet, rk("99", ""), nil, 404, "M_NOT_FOUND"},
		{"a key without session_data", http.MethodPut, rk(v2, sessionPath), obj{"first_message_index": 0, "forwarded_count": 0, "is_verified": true}, 400, "M_BAD_JSON"},
		{"unknown version", http.MethodGet, v3 + "/room_keys/version/nope", nil, 404, "M_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, alice.token, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.code {
				t.Fatalf("%d %s, want %d %s", res.Status, res.Raw, tc.status, tc.code)
			}
		})
	}

	// Deleting the current version: the previous one is current again.
	apptest.MustStatus(t, s.Do(t, http.MethodDelete, v3+"/room_keys/version/"+v2, alice.token, nil), http.StatusOK)
	if res := s.Do(t, http.MethodGet, v3+"/room_keys/version/"+v2, alice.token, nil); res.Status != http.StatusNotFound {
		t.Fatalf("deleted version: %s", res.Raw)
	}
	if res := s.Do(t, http.MethodGet, v3+"/room_keys/version", alice.token, nil); res.String("version") != v1 {
		t.Fatalf("current after deleting %s: %s", v2, res.Raw)
	}
	// A deleted version's number is not given out again.
	res = s.Do(t, http.MethodPost, v3+"/room_keys/version", alice.token,
		obj{"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": authData})
	if res.String("version") == v2 || res.String("version") == v1 {
		t.Fatalf("version reused: %s", res.Raw)
	}
}
