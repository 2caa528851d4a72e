package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// TestIdleLongPollTimesOutWithTheCurrentKeyCounts: a long-poll from the
// current position of every stream that times out answers the same
// next_batch, the device's one-time key counts as they are when it
// answers (a key claimed by another user changes them without waking
// anything), the fallback key types, and nothing else.
func TestIdleLongPollTimesOutWithTheCurrentKeyCounts(t *testing.T) {
	// Without presence: another user's request moves its stream (bob's
	// claim), and this sync would no longer be idle.
	s := apptest.Start(t, func(c *config.Config) { c.Presence.Enabled = false })
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	apptest.MustStatus(t, alice.upload(t, s, obj{
		"device_keys": alice.deviceKeys(t),
		"one_time_keys": obj{
			"signed_curve25519:AAAA": alice.signedKey(t, "otk1", false),
			"signed_curve25519:AAAB": alice.signedKey(t, "otk2", false),
		},
		"fallback_keys": obj{"signed_curve25519:FFFF": alice.signedKey(t, "fb", true)},
	}), http.StatusOK)
	newRoom(t, s, alice.token, obj{"name": "idle"})

	// Sync until nothing moves: the token is then every stream's position.
	since := e2eeSyncOf(t, s, alice.token, "").NextBatch
	for i := 0; ; i++ {
		next := e2eeSyncOf(t, s, alice.token, since).NextBatch
		if next == since {
			break
		}
		if i == 10 {
			t.Fatalf("the token still moves after %d syncs: %s", i, next)
		}
		since = next
	}
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/keys/claim", bob.token,
		obj{"one_time_keys": obj{alice.user: obj{alice.device: "signed_curve25519"}}}), http.StatusOK)

	res := s.Do(t, http.MethodGet, v3+"/sync?timeout=50&since="+url.QueryEscape(since), alice.token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var got any
	if err := json.Unmarshal(res.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := obj{
		"next_batch":                       since,
		"rooms":                            obj{"join": obj{}, "invite": obj{}, "leave": obj{}, "knock": obj{}},
		"presence":                         obj{"events": []any{}},
		"account_data":                     obj{"events": []any{}},
		"to_device":                        obj{"events": []any{}},
		"device_lists":                     obj{"changed": []any{}, "left": []any{}},
		"device_one_time_keys_count":       obj{"signed_curve25519": 1},
		"device_unused_fallback_key_types": []any{"signed_curve25519"},
	}
	if canonical(t, got) != canonical(t, want) {
		t.Fatalf("time-out answer\n%s\nwant\n%s", canonical(t, got), canonical(t, want))
	}
}
