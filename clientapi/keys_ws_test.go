package clientapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// nextE2EE is the E2EE part of the stream's next sync batch.
func (c *wsClient) nextE2EE() e2eeSync {
	c.t.Helper()
	var f wsFrame
	if len(c.syncs) > 0 {
		f, c.syncs = c.syncs[0], c.syncs[1:]
	} else {
		for f = c.next(); f.Type != "sync"; f = c.next() {
			if f.Type == "sync_error" {
				c.t.Fatalf("sync error %d %s", f.Status, f.Body)
			}
		}
	}
	var out e2eeSync
	if err := json.Unmarshal(f.Body, &out); err != nil {
		c.t.Fatalf("sync frame %s: %v", f.Body, err)
	}
	return out
}

// TestWebSocketToDevice: the WebSocket sync stream carries to-device
// messages like /sync, and moving on from a batch acknowledges it.
func TestWebSocketToDevice(t *testing.T) {
	s := apptest.Start(t)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	c := connectWS(t, s, bob.token)
	c.send(obj{"type": "sync", "id": "s1", "since": nil})
	initial := c.nextE2EE()

	send := func(txn string, n int) {
		t.Helper()
		res := s.Do(t, http.MethodPut, v3+"/sendToDevice/m.test/"+txn, alice.token,
			obj{"messages": obj{bob.user: obj{bob.device: obj{"n": n}}}})
		apptest.MustStatus(t, res, http.StatusOK)
	}
	send("a", 1)
	b1 := c.nextE2EE()
	if len(b1.ToDevice.Events) != 1 || b1.ToDevice.Events[0].Content["n"] != 1.0 {
		t.Fatalf("first batch: %+v", b1.ToDevice.Events)
	}
	send("b", 2)
	b2 := c.nextE2EE()
	if len(b2.ToDevice.Events) != 1 || b2.ToDevice.Events[0].Content["n"] != 2.0 {
		t.Fatalf("second batch: %+v (the first message must not come again)", b2.ToDevice.Events)
	}
	// The stream built the second batch from the first one's token: the
	// first message is acknowledged and gone for any later sync too.
	for _, e := range e2eeSyncOf(t, s, bob.token, initial.NextBatch).ToDevice.Events {
		if e.Content["n"] == 1.0 {
			t.Fatalf("the acknowledged message is still delivered")
		}
	}
	// Two OTKs uploaded: the next batch reports the count.
	apptest.MustStatus(t, bob.upload(t, s, obj{"device_keys": bob.deviceKeys(t),
		"one_time_keys": obj{"signed_curve25519:1": bob.signedKey(t, "k1", false), "signed_curve25519:2": bob.signedKey(t, "k2", false)}}), http.StatusOK)
	if b3 := c.nextE2EE(); b3.OTKCount["signed_curve25519"] != 2 || !contains(b3.DeviceLists.Changed, bob.user) {
		t.Fatalf("batch after the upload: counts %v, device_lists %+v", b3.OTKCount, b3.DeviceLists)
	}
}
