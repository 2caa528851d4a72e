package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

const dehydratedPath = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device"

// dehydratedUpload is a PUT /dehydrated_device body for device id dev of
// alice, with its own identity key.
func dehydratedUpload(t *testing.T, alice *e2eeDevice, dev string) obj {
	t.Helper()
	d := &e2eeDevice{user: alice.user, device: dev, key: newDevKey(t, dev)}
	return obj{"device_id": dev, "initial_device_display_name": "dehydrated",
		"device_data":   obj{"algorithm": "m.dehydration.v1.olm", "device_pickle": "encrypted"},
		"device_keys":   d.deviceKeys(t),
		"one_time_keys": obj{"signed_curve25519:D1": d.signedKey(t, "d1", false)}}
}

func TestDehydratedDevice(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	if res := s.Do(t, http.MethodGet, dehydratedPath, alice.token, nil); res.Status != http.StatusNotFound {
		t.Fatalf("no dehydrated device yet: %d %s", res.Status, res.Raw)
	}

	wrongKeys := dehydratedUpload(t, alice, "DEHYD1")
	wrongKeys["device_id"] = "DEHYD9"
	taken := dehydratedUpload(t, alice, alice.device)
	noData := dehydratedUpload(t, alice, "DEHYD1")
	delete(noData, "device_data")
	for _, tc := range []struct {
		name string
		body obj
		code string
	}{
		{"device_keys of another device", wrongKeys, "M_INVALID_PARAM"},
		{"the id of an existing device", taken, "M_INVALID_PARAM"},
		{"no device_data", noData, "M_BAD_JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPut, dehydratedPath, alice.token, tc.body)
			if res.Status != http.StatusBadRequest || res.Errcode() != tc.code {
				t.Fatalf("%d %s, want 400 %s", res.Status, res.Raw, tc.code)
			}
		})
	}

	res := s.Do(t, http.MethodPut, dehydratedPath, alice.token, dehydratedUpload(t, alice, "DEHYD1"))
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("device_id") != "DEHYD1" {
		t.Fatalf("put: %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, dehydratedPath, alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("device_id") != "DEHYD1" || res.Body["device_data"].(map[string]any)["device_pickle"] != "encrypted" {
		t.Fatalf("get: %s", res.Raw)
	}
	// Others see it as one of Alice's devices, and can claim its keys.
	q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
	if q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any)["DEHYD1"] == nil {
		t.Fatalf("query: %s", q.Raw)
	}
	c := s.Do(t, http.MethodPost, v3+"/keys/claim", bob.token, obj{"one_time_keys": obj{alice.user: obj{"DEHYD1": "signed_curve25519"}}})
	if c.Body["one_time_keys"].(map[string]any)[alice.user].(map[string]any)["DEHYD1"] == nil {
		t.Fatalf("claim: %s", c.Raw)
	}

	// Messages to all of Alice's devices wait in the dehydrated one too.
	apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/sendToDevice/m.room_key/d1", bob.token,
		obj{"messages": obj{alice.user: obj{"*": obj{"k": 1}}}}), http.StatusOK)
	events := func(next string) apptest.Response {
		t.Helper()
		body := obj{}
		if next != "" {
			body["next_batch"] = next
		}
		res := s.Do(t, http.MethodPost, dehydratedPath+"/DEHYD1/events", alice.token, body)
		apptest.MustStatus(t, res, http.StatusOK)
		return res
	}
	first := events("")
	if evs := first.Body["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["sender"] != bob.user {
		t.Fatalf("events: %s", first.Raw)
	}
	second := events(first.String("next_batch"))
	if evs := second.Body["events"].([]any); len(evs) != 0 {
		t.Fatalf("events after next_batch: %s", second.Raw)
	}
	if again := events(""); len(again.Body["events"].([]any)) != 0 {
		t.Fatalf("acknowledged events came again: %s", again.Raw)
	}
	if res := s.Do(t, http.MethodPost, dehydratedPath+"/"+alice.device+"/events", alice.token, obj{}); res.Status != http.StatusForbidden {
		t.Fatalf("events of a device that is not dehydrated: %d %s", res.Status, res.Raw)
	}

	// A new dehydrated device replaces the old one.
	apptest.MustStatus(t, s.Do(t, http.MethodPut, dehydratedPath, alice.token, dehydratedUpload(t, alice, "DEHYD2")), http.StatusOK)
	q = s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
	devs := q.Body["device_keys"].(map[string]any)[alice.user].(map[string]any)
	if devs["DEHYD1"] != nil || devs["DEHYD2"] == nil {
		t.Fatalf("after replacing: %v", devs)
	}
	res = s.Do(t, http.MethodDelete, dehydratedPath, alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("device_id") != "DEHYD2" {
		t.Fatalf("delete: %s", res.Raw)
	}
	if res := s.Do(t, http.MethodDelete, dehydratedPath, alice.token, nil); res.Status != http.StatusNotFound {
		t.Fatalf("second delete: %s", res.Raw)
	}
}
