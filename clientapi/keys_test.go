package clientapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

func TestKeysUploadQueryClaim(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")

	res := alice.upload(t, s, obj{
		"device_keys": alice.deviceKeys(t),
		"one_time_keys": obj{
			"signed_curve25519:AAAA": alice.signedKey(t, "otk1", false),
			"signed_curve25519:AAAB": alice.signedKey(t, "otk2", false),
		},
		"fallback_keys": obj{"signed_curve25519:FFFF": alice.signedKey(t, "fb", true)},
	})
	apptest.MustStatus(t, res, http.StatusOK)
	if n := res.Body["one_time_key_counts"].(map[string]any)["signed_curve25519"]; n != 2.0 {
		t.Fatalf("one_time_key_counts = %v, want 2", res.Body)
	}
	if got := e2eeSyncOf(t, s, alice.token, ""); got.OTKCount["signed_curve25519"] != 2 ||
		!slices.Equal(got.FallbackTypes, []string{"signed_curve25519"}) {
		t.Fatalf("sync counts %v, fallback types %v", got.OTKCount, got.FallbackTypes)
	}

	// Bob sees Alice's device with its display name, exactly as signed.
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	got := q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any)[alice.device].(map[string]any)
	if got["unsigned"].(map[string]any)["device_display_name"] == nil {
		t.Errorf("no device_display_name: %v", got)
	}
	delete(got, "unsigned")
	if canonical(t, got) != canonical(t, alice.deviceKeys(t)) {
		t.Errorf("queried keys %v differ from the uploaded ones", got)
	}
	// A device that was not asked for is left out.
	q = s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{"OTHER"}}})
	if devs := q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any); len(devs) != 0 {
		t.Errorf("query of an unknown device answered %v", devs)
	}

	// Each one-time key is claimed once; then the fallback key, again and again.
	claim := func() map[string]any {
		res := s.Do(t, http.MethodPost, v3+"/keys/claim", bob.token,
			obj{"one_time_keys": obj{alice.user: obj{alice.device: "signed_curve25519"}}})
		apptest.MustStatus(t, res, http.StatusOK)
		keys, _ := res.Body["one_time_keys"].(map[string]any)[alice.user].(map[string]any)[alice.device].(map[string]any)
		return keys
	}
	seen := map[string]bool{}
	for range 2 {
		k := claim()
		if len(k) != 1 {
			t.Fatalf("claim answered %v", k)
		}
		for id := range k {
			if seen[id] || id == "signed_curve25519:FFFF" {
				t.Fatalf("key %s handed out twice or fallback before the one-time keys ran out", id)
			}
			seen[id] = true
		}
	}
	for range 2 {
		if k := claim(); k["signed_curve25519:FFFF"] == nil {
			t.Fatalf("claim after the one-time keys ran out = %v, want the fallback key", k)
		}
	}
	if got := e2eeSyncOf(t, s, alice.token, ""); got.OTKCount["signed_curve25519"] != 0 || len(got.FallbackTypes) != 0 {
		t.Fatalf("after the claims: counts %v, unused fallback types %v", got.OTKCount, got.FallbackTypes)
	}
	// A new fallback key is unused again.
	apptest.MustStatus(t, alice.upload(t, s, obj{"fallback_keys": obj{"signed_curve25519:FFF2": alice.signedKey(t, "fb2", true)}}), http.StatusOK)
	if got := e2eeSyncOf(t, s, alice.token, ""); !slices.Equal(got.FallbackTypes, []string{"signed_curve25519"}) {
		t.Fatalf("after a new fallback key: unused types %v", got.FallbackTypes)
	}
	// A device that does not exist has nothing to claim.
	res = s.Do(t, http.MethodPost, v3+"/keys/claim", bob.token, obj{"one_time_keys": obj{alice.user: obj{"NOPE": "signed_curve25519"}}})
	apptest.MustStatus(t, res, http.StatusOK)
	if len(res.Body["one_time_keys"].(map[string]any)) != 0 {
		t.Fatalf("claim of an unknown device = %s", res.Raw)
	}
}

func TestKeysUploadRefusals(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	apptest.MustStatus(t, bob.upload(t, s, obj{"one_time_keys": obj{"signed_curve25519:K1": bob.signedKey(t, "k1", false)}}), http.StatusOK)

	foreignUser := alice.deviceKeys(t)
	foreignUser["user_id"] = bob.user
	foreignUser = alice.sign(t, foreignUser)
	foreignDevice := bob.deviceKeys(t) // Bob's device, uploaded by Alice
	badSig := alice.deviceKeys(t)
	badSig["signatures"] = obj{alice.user: obj{"ed25519:" + alice.device: "AAAA"}}
	unsigned := alice.deviceKeys(t)
	delete(unsigned, "signatures")
	otherKey := alice.deviceKeys(t)
	otherKey["algorithms"] = []string{"m.megolm.v1.aes-sha2"} // changed after signing
	forged := bob.signedKey(t, "k1", false)                   // signed by the wrong device

	for _, tc := range []struct {
		name   string
		dev    *e2eeDevice
		body   obj
		status int
		code   string
	}{
		{"device_keys of another user", alice, obj{"device_keys": foreignUser}, 400, "M_INVALID_PARAM"},
		{"device_keys of another device", alice, obj{"device_keys": foreignDevice}, 400, "M_INVALID_PARAM"},
		{"malformed signature", alice, obj{"device_keys": badSig}, 400, "M_INVALID_PARAM"},
		{"no signature", alice, obj{"device_keys": unsigned}, 400, "M_INVALID_PARAM"},
		{"signature over other contents", alice, obj{"device_keys": otherKey}, 400, "M_INVALID_PARAM"},
		{"device_keys not an object", alice, obj{"device_keys": "x"}, 400, "M_BAD_JSON"},
		{"one-time key name without key id", alice, obj{"one_time_keys": obj{"curve25519": "k"}}, 400, "M_BAD_JSON"},
		{"one-time key signed by another device", alice, obj{"device_keys": alice.deviceKeys(t),
			"one_time_keys": obj{"signed_curve25519:X": forged}}, 400, "M_INVALID_PARAM"},
		{"one-time key id reused with other contents", bob, obj{"one_time_keys": obj{"signed_curve25519:K1": bob.signedKey(t, "other", false)}}, 400, "M_INVALID_PARAM"},
		{"two fallback keys of one algorithm", alice, obj{"fallback_keys": obj{"curve25519:A": "a", "curve25519:B": "b"}}, 400, "M_INVALID_PARAM"},
		{"the same one-time key again is fine", bob, obj{"one_time_keys": obj{"signed_curve25519:K1": bob.signedKey(t, "k1", false)}}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.dev.upload(t, s, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.code {
				t.Fatalf("status %d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.code, res.Raw)
			}
		})
	}
	// Nothing of the refused uploads was stored.
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}, bob.user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	dk := q.Body["device_keys"].(map[string]any)
	if len(dk[alice.user].(map[string]any)) != 0 || len(dk[bob.user].(map[string]any)) != 0 {
		t.Fatalf("refused device keys were stored: %s", q.Raw)
	}
	if res := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{}); res.Errcode() != "M_MISSING_PARAM" {
		t.Errorf("query without device_keys: %s", res.Raw)
	}
	if res := s.Do(t, http.MethodPost, v3+"/keys/upload", "", obj{}); res.Status != http.StatusUnauthorized {
		t.Errorf("upload without a token: %d", res.Status)
	}
}

func TestSendToDevice(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob1 := newE2EEDevice(t, s, "bob")
	bob2 := newE2EEDevice(t, s, "bob")
	t0 := e2eeSyncOf(t, s, bob1.token, "").NextBatch
	t0b2 := e2eeSyncOf(t, s, bob2.token, "").NextBatch

	send := func(txn string, msgs obj) {
		t.Helper()
		res := s.Do(t, http.MethodPut, v3+"/sendToDevice/m.room_key_request/"+txn, alice.token, obj{"messages": msgs})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	send("t1", obj{bob1.user: obj{bob1.device: obj{"n": 1}}})
	send("t1", obj{bob1.user: obj{bob1.device: obj{"n": 1}}}) // a retry: delivered once
	send("t2", obj{bob1.user: obj{"*": obj{"n": 2}}})

	got := e2eeSyncOf(t, s, bob1.token, t0)
	if len(got.ToDevice.Events) != 2 || got.ToDevice.Events[0].Content["n"] != 1.0 || got.ToDevice.Events[1].Content["n"] != 2.0 ||
		got.ToDevice.Events[0].Sender != alice.user || got.ToDevice.Events[0].Type != "m.room_key_request" {
		t.Fatalf("bob1 got %+v, want n=1 then n=2 from alice", got.ToDevice.Events)
	}
	// Not acknowledged yet: the same since gives them again.
	if again := e2eeSyncOf(t, s, bob1.token, t0); len(again.ToDevice.Events) != 2 {
		t.Fatalf("unacknowledged messages were lost: %+v", again.ToDevice.Events)
	}
	// Syncing with the token past them acknowledges them: they are gone.
	if next := e2eeSyncOf(t, s, bob1.token, got.NextBatch); len(next.ToDevice.Events) != 0 {
		t.Fatalf("acknowledged messages came again: %+v", next.ToDevice.Events)
	}
	if old := e2eeSyncOf(t, s, bob1.token, t0); len(old.ToDevice.Events) != 0 {
		t.Fatalf("deleted messages came again: %+v", old.ToDevice.Events)
	}
	// "*" reached Bob's other device too, and only the message for all.
	b2 := e2eeSyncOf(t, s, bob2.token, t0b2)
	if len(b2.ToDevice.Events) != 1 || b2.ToDevice.Events[0].Content["n"] != 2.0 {
		t.Fatalf("bob2 got %+v", b2.ToDevice.Events)
	}

	// A waiting long-poll wakes for a to-device message.
	done := longPoll(t, s, bob2.token, b2.NextBatch)
	send("t3", obj{bob2.user: obj{bob2.device: obj{"n": 3}}})
	if w := <-done; len(w.ToDevice.Events) != 1 || w.ToDevice.Events[0].Content["n"] != 3.0 {
		t.Fatalf("woken long-poll got %+v", w.ToDevice.Events)
	}

	// A deleted device's pending messages go with it.
	send("t4", obj{bob2.user: obj{bob2.device: obj{"n": 4}}})
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout", bob2.token, obj{}), http.StatusOK)
	var n int
	queryRow(t, s, "SELECT count(*) FROM to_device_messages WHERE device_id = $1", []any{bob2.device}, &n)
	if n != 0 {
		t.Fatalf("%d messages of a deleted device are left", n)
	}

	for _, tc := range []struct {
		name, path string
		body       any
		code       string
	}{
		{"no messages", "/sendToDevice/m.x/e1", obj{}, "M_MISSING_PARAM"},
		{"not a user id", "/sendToDevice/m.x/e2", obj{"messages": obj{"bob": obj{"*": obj{}}}}, "M_INVALID_PARAM"},
		{"not JSON", "/sendToDevice/m.x/e3", "{", "M_NOT_JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPut, v3+tc.path, alice.token, tc.body)
			if res.Status != http.StatusBadRequest || res.Errcode() != tc.code {
				t.Fatalf("%d %s, want 400 %s", res.Status, res.Raw, tc.code)
			}
		})
	}
}

// TestToDeviceLimit: one sync carries at most 100 messages; its token
// stops at the last one given, so the rest come next, none lost.
func TestToDeviceLimit(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	t0 := e2eeSyncOf(t, s, bob.token, "").NextBatch
	for i := range 150 {
		err := s.App.Keys().SendToDevice(context.Background(), id.UserID(alice.user), id.DeviceID(alice.device), "m.test",
			fmt.Sprintf("txn%d", i), map[id.UserID]map[id.DeviceID]json.RawMessage{
				id.UserID(bob.user): {id.DeviceID(bob.device): json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}})
		if err != nil {
			t.Fatal(err)
		}
	}
	next, want := t0, 0
	for _, size := range []int{100, 50, 0} {
		got := e2eeSyncOf(t, s, bob.token, next)
		if len(got.ToDevice.Events) != size {
			t.Fatalf("batch of %d, want %d", len(got.ToDevice.Events), size)
		}
		for _, e := range got.ToDevice.Events {
			if e.Content["n"] != float64(want) {
				t.Fatalf("message %v, want n=%d", e.Content, want)
			}
			want++
		}
		next = got.NextBatch
	}
}
