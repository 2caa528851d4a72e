package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// crossSigningSet is a user's three cross-signing keys, the self-signing
// and user-signing ones signed by the master key.
type crossSigningSet struct {
	master, self, userSigning csKey
	body                      obj
}

func newCrossSigningSet(t *testing.T, user string) crossSigningSet {
	t.Helper()
	cs := crossSigningSet{master: genKey(t), self: genKey(t), userSigning: genKey(t)}
	cs.body = obj{
		"master_key":       crossSigningKey(user, "master", cs.master),
		"self_signing_key": signWith(t, crossSigningKey(user, "self_signing", cs.self), user, cs.master),
		"user_signing_key": signWith(t, crossSigningKey(user, "user_signing", cs.userSigning), user, cs.master),
	}
	return cs
}

func TestCrossSigningUpload(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	path := v3 + "/keys/device_signing/upload"

	wrongUser := newCrossSigningSet(t, alice.user)
	wrongUser.body["master_key"] = crossSigningKey(bob.user, "master", wrongUser.master)
	unsignedSelf := newCrossSigningSet(t, alice.user)
	unsignedSelf.body["self_signing_key"] = crossSigningKey(alice.user, "self_signing", unsignedSelf.self)
	wrongUsage := newCrossSigningSet(t, alice.user)
	wrongUsage.body["master_key"] = crossSigningKey(alice.user, "self_signing", wrongUsage.master)
	selfOnly := newCrossSigningSet(t, alice.user)
	delete(selfOnly.body, "master_key")
	for _, tc := range []struct {
		name string
		body obj
		code string
	}{
		{"master key of another user", wrongUser.body, "M_INVALID_PARAM"},
		{"self-signing key not signed by the master key", unsignedSelf.body, "M_INVALID_SIGNATURE"},
		{"master key without the master usage", wrongUsage.body, "M_INVALID_PARAM"},
		{"no master key yet", selfOnly.body, "M_INVALID_PARAM"},
		{"nothing", obj{}, "M_MISSING_PARAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, path, alice.token, tc.body)
			if res.Status != http.StatusBadRequest || res.Errcode() != tc.code {
				t.Fatalf("%d %s, want 400 %s", res.Status, res.Raw, tc.code)
			}
		})
	}

	// A device whose id is a cross-signing key (a login may choose its
	// device id) blocks that key; a device cannot take a key's id either.
	clash := newCrossSigningSet(t, alice.user)
	clashDev := newE2EEDeviceWithID(t, s, "alice", clash.master.PublicBase64())
	if res := s.Do(t, http.MethodPost, path, alice.token, clash.body); res.Errcode() != "M_INVALID_PARAM" {
		t.Fatalf("a master key named like a device: %d %s", res.Status, res.Raw)
	}
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout", clashDev.token, obj{}), http.StatusOK)

	// The first upload needs no user-interactive auth.
	cs := newCrossSigningSet(t, alice.user)
	apptest.MustStatus(t, s.Do(t, http.MethodPost, path, alice.token, cs.body), http.StatusOK)
	// The same keys again change nothing and need none either.
	apptest.MustStatus(t, s.Do(t, http.MethodPost, path, alice.token, cs.body), http.StatusOK)
	// Replacing them does: a 401 with the password flow, then success.
	cs2 := newCrossSigningSet(t, alice.user)
	res := withUIA(t, s, http.MethodPost, path, alice.token, cs2.body, "m.login.password",
		func(session string) obj { return passwordAuth(session, "alice", pw) })
	apptest.MustStatus(t, res, http.StatusOK)
	wrongPassword := newCrossSigningSet(t, alice.user)
	res = withUIA(t, s, http.MethodPost, path, alice.token, wrongPassword.body, "m.login.password",
		func(session string) obj { return passwordAuth(session, "alice", "wrong") })
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("replacement with a wrong password: %d %s", res.Status, res.Raw)
	}

	named := newE2EEDeviceWithID(t, s, "alice", cs2.self.PublicBase64())
	if res := named.upload(t, s, obj{"device_keys": named.deviceKeys(t)}); res.Errcode() != "M_INVALID_PARAM" {
		t.Fatalf("device keys of a device named like a cross-signing key: %d %s", res.Status, res.Raw)
	}

	// Bob sees Alice's master and self-signing keys, never her
	// user-signing key; Alice sees her own.
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	if canonical(t, q.Body["master_keys"].(map[string]any)[alice.user]) != canonical(t, cs2.body["master_key"]) {
		t.Errorf("master key = %v", q.Body["master_keys"])
	}
	if canonical(t, q.Body["self_signing_keys"].(map[string]any)[alice.user]) != canonical(t, cs2.body["self_signing_key"]) {
		t.Errorf("self-signing key = %v", q.Body["self_signing_keys"])
	}
	if usk, ok := q.Body["user_signing_keys"].(map[string]any); ok && usk[alice.user] != nil {
		t.Errorf("bob got alice's user-signing key")
	}
	q = s.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{alice.user: []string{}}})
	if canonical(t, q.Body["user_signing_keys"].(map[string]any)[alice.user]) != canonical(t, cs2.body["user_signing_key"]) {
		t.Errorf("alice's own user-signing key = %v", q.Body["user_signing_keys"])
	}
}

func TestSignaturesUpload(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	apptest.MustStatus(t, alice.upload(t, s, obj{"device_keys": alice.deviceKeys(t)}), http.StatusOK)
	acs := newCrossSigningSet(t, alice.user)
	bcs := newCrossSigningSet(t, bob.user)
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/keys/device_signing/upload", alice.token, acs.body), http.StatusOK)
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/keys/device_signing/upload", bob.token, bcs.body), http.StatusOK)
	t0 := e2eeSyncOf(t, s, bob.token, "").NextBatch
	room := newRoom(t, s, alice.token, obj{"invite": []string{bob.user}})
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/rooms/"+room+"/join", bob.token, obj{}), http.StatusOK)

	aliceMaster := acs.master.PublicBase64()
	bobMaster := bcs.master.PublicBase64()
	deviceSigned := signWith(t, alice.deviceKeys(t), alice.user, acs.self)           // self-signing key signs the device
	masterSigned := signWith(t, acs.body["master_key"].(obj), alice.user, alice.key) // the device signs the master key
	bobSigned := signWith(t, bcs.body["master_key"].(obj), alice.user, acs.userSigning)
	forged := signWith(t, alice.deviceKeys(t), alice.user, acs.userSigning) // the wrong key for a device
	changed := alice.deviceKeys(t)
	changed["algorithms"] = []string{"x"}
	changed = signWith(t, changed, alice.user, acs.self) // not the stored object
	res := s.Do(t, http.MethodPost, v3+"/keys/signatures/upload", alice.token, obj{
		alice.user: obj{alice.device: deviceSigned, aliceMaster: masterSigned},
		bob.user:   obj{bobMaster: bobSigned},
	})
	apptest.MustStatus(t, res, http.StatusOK)
	if f := res.Body["failures"].(map[string]any); len(f) != 0 {
		t.Fatalf("failures: %s", res.Raw)
	}
	res = s.Do(t, http.MethodPost, v3+"/keys/signatures/upload", alice.token, obj{
		alice.user: obj{"NOSUCHDEVICE": deviceSigned},
		bob.user:   obj{"notakey": bobSigned},
	})
	apptest.MustStatus(t, res, http.StatusOK)
	for _, tc := range []struct{ user, key, code string }{{alice.user, "NOSUCHDEVICE", "M_NOT_FOUND"}, {bob.user, "notakey", "M_NOT_FOUND"}} {
		f, _ := res.Body["failures"].(map[string]any)[tc.user].(map[string]any)[tc.key].(map[string]any)
		if f["errcode"] != tc.code {
			t.Errorf("failure of %s %s = %v, want %s", tc.user, tc.key, f, tc.code)
		}
	}
	for _, tc := range []struct {
		name string
		obj  obj
	}{{"signed by the wrong key", forged}, {"not the stored object", changed}} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, v3+"/keys/signatures/upload", alice.token, obj{alice.user: obj{alice.device: tc.obj}})
			f, _ := res.Body["failures"].(map[string]any)[alice.user].(map[string]any)[alice.device].(map[string]any)
			if f["errcode"] != "M_INVALID_SIGNATURE" {
				t.Fatalf("%s", res.Raw)
			}
		})
	}

	// Bob's query carries the new signatures beside the originals.
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}, bob.user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	dev := q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any)[alice.device].(map[string]any)
	sigs := dev["signatures"].(map[string]any)[alice.user].(map[string]any)
	if sigs["ed25519:"+alice.device] == nil || sigs["ed25519:"+acs.self.PublicBase64()] == nil {
		t.Errorf("device signatures = %v", sigs)
	}
	msigs := q.Body["master_keys"].(map[string]any)[alice.user].(map[string]any)["signatures"].(map[string]any)[alice.user].(map[string]any)
	if msigs["ed25519:"+alice.device] == nil || msigs["ed25519:"+aliceMaster] != nil && len(msigs) != 1 {
		t.Errorf("master key signatures = %v", msigs)
	}
	// Alice's signature of bob's master key (her user-signing key's) is
	// for her eyes only (spec "Cross-signing").
	bsigs, _ := q.Body["master_keys"].(map[string]any)[bob.user].(map[string]any)["signatures"].(map[string]any)
	if bsigs[alice.user] != nil {
		t.Errorf("bob sees alice's signature of his master key: %v", bsigs)
	}
	qa := s.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{bob.user: []string{}}})
	apptest.MustStatus(t, qa, http.StatusOK)
	bsigs, _ = qa.Body["master_keys"].(map[string]any)[bob.user].(map[string]any)["signatures"].(map[string]any)
	if bsigs[alice.user] == nil {
		t.Errorf("alice's query of bob's master key lacks her signature: %v", bsigs)
	}
	// Signatures are device list changes: Bob hears of Alice's and of his own.
	got := e2eeSyncOf(t, s, bob.token, t0)
	if !contains(got.DeviceLists.Changed, alice.user) || !contains(got.DeviceLists.Changed, bob.user) {
		t.Errorf("device_lists after signatures = %+v", got.DeviceLists)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
