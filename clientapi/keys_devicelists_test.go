package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestDeviceListChanges(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	carol := newE2EEDevice(t, s, "carol")
	dave := newE2EEDevice(t, s, "dave") // shares no room with Bob
	room := newRoom(t, s, alice.token, obj{"preset": "public_chat"})
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/join", bob.token, obj{}), http.StatusOK)
	t0 := e2eeSyncOf(t, s, bob.token, "").NextBatch

	// Alice uploads device keys: Bob, who shares a room, is told; Dave's
	// upload is none of Bob's business.
	apptest.MustStatus(t, alice.upload(t, s, obj{"device_keys": alice.deviceKeys(t)}), http.StatusOK)
	apptest.MustStatus(t, dave.upload(t, s, obj{"device_keys": dave.deviceKeys(t)}), http.StatusOK)
	s1 := e2eeSyncOf(t, s, bob.token, t0)
	if !slices.Equal(s1.DeviceLists.Changed, []string{alice.user}) || len(s1.DeviceLists.Left) != 0 {
		t.Fatalf("after alice's upload: %+v", s1.DeviceLists)
	}
	// /keys/changes over the same range says the same.
	ch := s.Do(t, http.MethodGet, v3+"/keys/changes?from="+t0+"&to="+s1.NextBatch, bob.token, nil)
	apptest.MustStatus(t, ch, http.StatusOK)
	if canonical(t, ch.Body["changed"]) != canonical(t, []string{alice.user}) {
		t.Fatalf("/keys/changes = %s", ch.Raw)
	}
	// Uploading the same keys again changes nothing; one-time keys neither.
	apptest.MustStatus(t, alice.upload(t, s, obj{"device_keys": alice.deviceKeys(t),
		"one_time_keys": obj{"signed_curve25519:A": alice.signedKey(t, "a", false)}}), http.StatusOK)
	if s := e2eeSyncOf(t, s, bob.token, s1.NextBatch); len(s.DeviceLists.Changed) != 0 {
		t.Fatalf("a repeated upload is a change: %+v", s.DeviceLists)
	}

	// Renaming a device with keys is a change: /keys/query shows the name.
	apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/devices/"+alice.device, alice.token, obj{"display_name": "laptop"}), http.StatusOK)
	r1 := e2eeSyncOf(t, s, bob.token, s1.NextBatch)
	if !slices.Equal(r1.DeviceLists.Changed, []string{alice.user}) {
		t.Fatalf("after the rename: %+v", r1.DeviceLists)
	}
	s1 = r1

	// Carol joins: Bob now shares a room with her, she with Bob and Alice.
	c0 := e2eeSyncOf(t, s, carol.token, "").NextBatch
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/join", carol.token, obj{}), http.StatusOK)
	s2 := e2eeSyncOf(t, s, bob.token, s1.NextBatch)
	if !slices.Contains(s2.DeviceLists.Changed, carol.user) {
		t.Fatalf("after carol joined, bob's device_lists = %+v", s2.DeviceLists)
	}
	c1 := e2eeSyncOf(t, s, carol.token, c0)
	if !slices.Contains(c1.DeviceLists.Changed, alice.user) || !slices.Contains(c1.DeviceLists.Changed, bob.user) {
		t.Fatalf("after joining, carol's device_lists = %+v", c1.DeviceLists)
	}
	// Carol leaves: she and Bob no longer share a room.
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/leave", carol.token, obj{}), http.StatusOK)
	s3 := e2eeSyncOf(t, s, bob.token, s2.NextBatch)
	if !slices.Equal(s3.DeviceLists.Left, []string{carol.user}) || slices.Contains(s3.DeviceLists.Changed, carol.user) {
		t.Fatalf("after carol left, bob's device_lists = %+v", s3.DeviceLists)
	}
	c2 := e2eeSyncOf(t, s, carol.token, c1.NextBatch)
	if !slices.Contains(c2.DeviceLists.Left, alice.user) || !slices.Contains(c2.DeviceLists.Left, bob.user) {
		t.Fatalf("after leaving, carol's device_lists = %+v", c2.DeviceLists)
	}

	// Alice's device with keys is deleted (logout): Bob is told.
	done := longPoll(t, s, bob.token, s3.NextBatch)
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/logout", alice.token, obj{}), http.StatusOK)
	if got := <-done; !slices.Contains(got.DeviceLists.Changed, alice.user) {
		t.Fatalf("after alice's logout, bob's device_lists = %+v", got.DeviceLists)
	}
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
	if len(q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any)) != 0 {
		t.Fatalf("a deleted device's keys are still served: %s", q.Raw)
	}

	// Bob's own new device is in his own changed list.
	b0 := e2eeSyncOf(t, s, bob.token, "").NextBatch
	bob2 := newE2EEDevice(t, s, "bob")
	apptest.MustStatus(t, bob2.upload(t, s, obj{"device_keys": bob2.deviceKeys(t)}), http.StatusOK)
	if got := e2eeSyncOf(t, s, bob.token, b0); !slices.Contains(got.DeviceLists.Changed, bob.user) {
		t.Fatalf("bob's new device: %+v", got.DeviceLists)
	}

	for _, tc := range []struct{ name, query string }{
		{"missing to", "?from=" + t0},
		{"bad token", "?from=nope&to=" + t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodGet, v3+"/keys/changes"+tc.query, bob.token, nil)
			if res.Status != http.StatusBadRequest {
				t.Fatalf("%d %s", res.Status, res.Raw)
			}
		})
	}
}
