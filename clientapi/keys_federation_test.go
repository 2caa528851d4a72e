package clientapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

// eduRecorder stands in for the federation queue.
type eduRecorder struct {
	mu   sync.Mutex
	edus []recordedEDU
	// failFor makes the next EDU for that server fail (a queue that
	// cannot store it).
	failFor id.ServerName
}

type recordedEDU struct {
	dest    id.ServerName
	typ     string
	content map[string]any
}

func (r *eduRecorder) SendEDU(_ context.Context, dest id.ServerName, typ string, content json.RawMessage) error {
	var c map[string]any
	if err := json.Unmarshal(content, &c); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if dest == r.failFor {
		r.failFor = ""
		return errors.New("queue unavailable")
	}
	r.edus = append(r.edus, recordedEDU{dest, typ, c})
	return nil
}

func (r *eduRecorder) take() []recordedEDU {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.edus
	r.edus = nil
	return out
}

// remoteKeys stands in for the federation client: it answers for
// other.test and fails for everyone else.
type remoteKeys struct{ query, claim json.RawMessage }

func (r remoteKeys) QueryKeys(_ context.Context, server id.ServerName, _ json.RawMessage) (json.RawMessage, error) {
	if server != "other.test" {
		return nil, http.ErrServerClosed
	}
	return r.query, nil
}

func (r remoteKeys) ClaimKeys(_ context.Context, server id.ServerName, _ json.RawMessage) (json.RawMessage, error) {
	if server != "other.test" {
		return nil, http.ErrServerClosed
	}
	return r.claim, nil
}

// joinRemote makes a remote user a joined member of room in the database:
// until federation joins exist, the only way to share a room with one.
func joinRemote(t *testing.T, s *apptest.Server, room, user string) {
	t.Helper()
	exec(t, s, `INSERT INTO room_memberships (room_nid, user_id, membership, seq, stream_pos)
SELECT room_nid, $2, 'join', 0, 0 FROM rooms WHERE room_id = $1`, room, user)
}

func TestKeysOverFederation(t *testing.T) {
	s := apptest.Start(t)
	ctx := context.Background()
	svc := s.App.Keys()
	rec := &eduRecorder{}
	svc.SetEDUSender(rec)
	alice := newE2EEDevice(t, s, "alice")
	bob := newE2EEDevice(t, s, "bob")
	room := newRoom(t, s, alice.token, obj{"preset": "public_chat"})
	const remote = "@rita:other.test"
	joinRemote(t, s, room, remote)
	apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/join", bob.token, obj{}), http.StatusOK)

	t.Run("a key upload is announced to the servers sharing a room", func(t *testing.T) {
		apptest.MustStatus(t, alice.upload(t, s, obj{"device_keys": alice.deviceKeys(t)}), http.StatusOK)
		edus := relayedEDUs(t, s, "other.test")
		if len(edus) != 1 || edus[0].dest != "other.test" || edus[0].typ != "m.device_list_update" ||
			edus[0].content["device_id"] != alice.device || edus[0].content["keys"] == nil {
			t.Fatalf("EDUs: %+v", edus)
		}
		apptest.MustStatus(t, alice.upload(t, s, obj{"device_keys": alice.deviceKeys(t),
			"one_time_keys": obj{"signed_curve25519:1": alice.signedKey(t, "o1", false)}}), http.StatusOK)
		if edus := relayedEDUs(t, s, "other.test"); len(edus) != 0 {
			t.Fatalf("an upload that changed no device keys sent %+v", edus)
		}
	})

	t.Run("a cross-signing upload is announced as m.signing_key_update", func(t *testing.T) {
		cs := newCrossSigningSet(t, alice.user)
		apptest.MustStatus(t, s.Do(t, http.MethodPost, v3+"/keys/device_signing/upload", alice.token, cs.body), http.StatusOK)
		edus := relayedEDUs(t, s, "other.test")
		if len(edus) != 1 || edus[0].dest != "other.test" || edus[0].typ != "m.signing_key_update" ||
			edus[0].content["master_key"] == nil || edus[0].content["self_signing_key"] == nil || edus[0].content["user_signing_key"] != nil {
			t.Fatalf("EDUs: %+v", edus)
		}
	})

	t.Run("to-device messages for remote users go as m.direct_to_device, once", func(t *testing.T) {
		body := obj{"messages": obj{remote: obj{"RDEV": obj{"x": 1}}, "@ron:other.test": obj{"*": obj{"x": 2}},
			"@zed:third.test": obj{"*": obj{"x": 3}}}}
		for range 2 {
			apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/sendToDevice/m.test/fed1", alice.token, body), http.StatusOK)
		}
		edus := rec.take()
		if len(edus) != 2 {
			t.Fatalf("EDUs: %+v", edus)
		}
		slices.SortFunc(edus, func(a, b recordedEDU) int { return strings.Compare(string(a.dest), string(b.dest)) })
		msgs := edus[0].content["messages"].(map[string]any)
		if edus[0].dest != "other.test" || edus[0].typ != "m.direct_to_device" || len(msgs) != 2 ||
			edus[0].content["sender"] != alice.user || edus[0].content["message_id"] == "" {
			t.Fatalf("EDU to other.test: %+v", edus[0])
		}
	})

	t.Run("a send the queue refuses fails; its retry carries the same message_id", func(t *testing.T) {
		since := e2eeSyncOf(t, s, bob.token, "").NextBatch
		body := obj{"messages": obj{"@ron:other.test": obj{"*": obj{"x": 1}}, "@zed:third.test": obj{"*": obj{"x": 1}},
			bob.user: obj{bob.device: obj{"x": 1}}}}
		rec.mu.Lock()
		rec.failFor = "third.test"
		rec.mu.Unlock()
		res := s.Do(t, http.MethodPut, v3+"/sendToDevice/m.test/retry1", alice.token, body)
		if res.Status != http.StatusInternalServerError {
			t.Fatalf("send with a failing queue: %d %s", res.Status, res.Raw)
		}
		if got := e2eeSyncOf(t, s, bob.token, since); len(got.ToDevice.Events) != 0 {
			t.Fatalf("the failed send reached bob: %+v", got.ToDevice.Events)
		}
		apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/sendToDevice/m.test/retry1", alice.token, body), http.StatusOK)
		// other.test may have got the first attempt's EDU too: every copy
		// has the same message_id, so its server keeps one.
		first := rec.take()
		if len(first) < 2 || len(first) > 3 {
			t.Fatalf("EDUs of the retried send: %+v", first)
		}
		for _, e := range first {
			if e.content["message_id"] != first[0].content["message_id"] {
				t.Fatalf("message_ids differ: %+v", first)
			}
		}
		apptest.MustStatus(t, s.Do(t, http.MethodPut, v3+"/sendToDevice/m.test/retry2", alice.token, body), http.StatusOK)
		if next := rec.take(); len(next) != 2 || next[0].content["message_id"] == first[0].content["message_id"] {
			t.Fatalf("EDUs of the next send: %+v", next)
		}
		if got := e2eeSyncOf(t, s, bob.token, since); len(got.ToDevice.Events) != 2 {
			t.Fatalf("bob got %+v, want the retried send and the next", got.ToDevice.Events)
		}
	})

	t.Run("an inbound m.direct_to_device reaches the local device once", func(t *testing.T) {
		since := e2eeSyncOf(t, s, bob.token, "").NextBatch
		edu := json.RawMessage(`{"sender":"@rita:other.test","type":"m.room_key","message_id":"m1",
			"messages":{"` + bob.user + `":{"` + bob.device + `":{"k":1}},"@nobody:elsewhere.test":{"*":{}}}}`)
		for range 2 {
			if err := svc.HandleDirectToDevice(ctx, "other.test", edu); err != nil {
				t.Fatal(err)
			}
		}
		got := e2eeSyncOf(t, s, bob.token, since)
		if len(got.ToDevice.Events) != 1 || got.ToDevice.Events[0].Sender != remote || got.ToDevice.Events[0].Type != "m.room_key" {
			t.Fatalf("bob got %+v", got.ToDevice.Events)
		}
		if err := svc.HandleDirectToDevice(ctx, "evil.test", edu); err == nil {
			t.Fatal("a sender of another server was accepted")
		}
	})

	t.Run("an inbound m.device_list_update marks the remote user changed", func(t *testing.T) {
		since := e2eeSyncOf(t, s, bob.token, "").NextBatch
		done := longPoll(t, s, bob.token, since)
		if err := svc.HandleDeviceListUpdate(ctx, "other.test", json.RawMessage(`{"user_id":"`+remote+`","device_id":"RDEV","stream_id":5,"prev_id":[4]}`)); err != nil {
			t.Fatal(err)
		}
		if got := <-done; !slices.Equal(got.DeviceLists.Changed, []string{remote}) {
			t.Fatalf("bob's device_lists: %+v", got.DeviceLists)
		}
		if err := svc.HandleSigningKeyUpdate(ctx, "evil.test", json.RawMessage(`{"user_id":"`+remote+`"}`)); err == nil {
			t.Fatal("an update of another server's user was accepted")
		}
	})

	t.Run("user devices and key queries and claims served to servers", func(t *testing.T) {
		newE2EEDevice(t, s, "alice") // a second device, without keys
		raw, err := svc.UserDevices(ctx, id.UserID(alice.user))
		if err != nil {
			t.Fatal(err)
		}
		var devs struct {
			UserID   string `json:"user_id"`
			StreamID int64  `json:"stream_id"`
			Devices  []struct {
				DeviceID string         `json:"device_id"`
				Keys     map[string]any `json:"keys"`
			} `json:"devices"`
		}
		if err := json.Unmarshal(raw, &devs); err != nil || devs.UserID != alice.user || devs.StreamID == 0 ||
			len(devs.Devices) != 3 {
			t.Fatalf("user devices: %s", raw)
		}
		// Every device is listed (registration's, the test's, the new one);
		// only the one that uploaded keys has some.
		for _, d := range devs.Devices {
			if (d.DeviceID == alice.device) != (d.Keys != nil) {
				t.Errorf("device %s keys %v", d.DeviceID, d.Keys)
			}
		}
		if _, err := svc.UserDevices(ctx, remote); err == nil {
			t.Fatal("devices of a remote user served")
		}
		raw, err = svc.FederationQueryKeys(ctx, map[id.UserID][]id.DeviceID{id.UserID(alice.user): nil, remote: nil})
		if err != nil {
			t.Fatal(err)
		}
		var q struct {
			DeviceKeys map[string]map[string]any `json:"device_keys"`
		}
		if err := json.Unmarshal(raw, &q); err != nil || q.DeviceKeys[alice.user][alice.device] == nil || q.DeviceKeys[remote] != nil {
			t.Fatalf("federation query: %s", raw)
		}
		raw, err = svc.FederationClaimKeys(ctx, map[id.UserID]map[id.DeviceID]string{id.UserID(alice.user): {id.DeviceID(alice.device): "signed_curve25519"}})
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			OneTimeKeys map[string]map[string]map[string]any `json:"one_time_keys"`
		}
		if err := json.Unmarshal(raw, &c); err != nil || c.OneTimeKeys[alice.user][alice.device]["signed_curve25519:1"] == nil {
			t.Fatalf("federation claim: %s", raw)
		}
	})

	t.Run("remote users are queried and claimed through the federation client", func(t *testing.T) {
		svc.SetRemoteKeys(remoteKeys{
			query: json.RawMessage(`{"device_keys":{"` + remote + `":{"RDEV":{"user_id":"` + remote + `","device_id":"RDEV"}},
				"@mallory:evil.test":{"X":{}}},"master_keys":{"` + remote + `":{"user_id":"` + remote + `"}}}`),
			claim: json.RawMessage(`{"one_time_keys":{"` + remote + `":{"RDEV":{"signed_curve25519:r":{"key":"k"}}}}}`),
		})
		q := s.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{remote: []string{}, "@x:down.test": []string{}}})
		apptest.MustStatus(t, q, http.StatusOK)
		dk := q.Body["device_keys"].(map[string]any)
		if dk[remote].(map[string]any)["RDEV"] == nil || dk["@mallory:evil.test"] != nil {
			t.Fatalf("remote query: %s", q.Raw)
		}
		if q.Body["master_keys"].(map[string]any)[remote] == nil || q.Body["failures"].(map[string]any)["down.test"] == nil {
			t.Fatalf("remote query: %s", q.Raw)
		}
		c := s.Do(t, http.MethodPost, v3+"/keys/claim", bob.token, obj{"one_time_keys": obj{remote: obj{"RDEV": "signed_curve25519"}}})
		apptest.MustStatus(t, c, http.StatusOK)
		if c.Body["one_time_keys"].(map[string]any)[remote].(map[string]any)["RDEV"] == nil {
			t.Fatalf("remote claim: %s", c.Raw)
		}
	})
}
