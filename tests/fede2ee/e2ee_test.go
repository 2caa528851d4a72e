package fede2ee

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

const v3 = "/_matrix/client/v3"

type obj = map[string]any

// device is a logged-in device with an ed25519 identity key.
type device struct {
	srv                 *apptest.Server
	user, device, token string
	priv                ed25519.PrivateKey
}

func newDevice(t *testing.T, srv *apptest.Server, localpart string) *device {
	t.Helper()
	user, token := srv.Register(t, localpart, "correct horse battery")
	res := srv.Do(t, http.MethodGet, v3+"/account/whoami", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &device{srv: srv, user: user, device: res.String("device_id"), token: token, priv: priv}
}

// sign signs o as keyID of entity with priv.
func sign(t *testing.T, o obj, entity, keyID string, priv ed25519.PrivateKey) obj {
	t.Helper()
	raw, _ := json.Marshal(o)
	v, err := canonicaljson.ParseLenient(raw)
	if err != nil {
		t.Fatal(err)
	}
	sig := signing.EncodeBase64(ed25519.Sign(priv, signing.SigningBytes(v)))
	if v, err = signing.AddSignature(v, entity, keyID, sig); err != nil {
		t.Fatal(err)
	}
	var out obj
	_ = json.Unmarshal(canonicaljson.Encode(v), &out)
	return out
}

func (d *device) pub() string { return signing.EncodeBase64(d.priv.Public().(ed25519.PublicKey)) }

func (d *device) upload(t *testing.T, otks int) {
	t.Helper()
	keyID := "ed25519:" + d.device
	body := obj{"device_keys": sign(t, obj{"user_id": d.user, "device_id": d.device,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       obj{"curve25519:" + d.device: "c" + d.device, keyID: d.pub()}}, d.user, keyID, d.priv)}
	keys := obj{}
	for i := range otks {
		keys["signed_curve25519:K"+string(rune('A'+i))] = sign(t, obj{"key": "otk" + string(rune('A'+i))}, d.user, keyID, d.priv)
	}
	if otks > 0 {
		body["one_time_keys"] = keys
	}
	apptest.MustStatus(t, d.srv.Do(t, http.MethodPost, v3+"/keys/upload", d.token, body), http.StatusOK)
}

// follow long-polls d's /sync until cond holds for a batch (20 s).
func (d *device) follow(t *testing.T, since *string, what string, cond func(b map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		path := v3 + "/sync?timeout=1000"
		if *since != "" {
			path += "&since=" + url.QueryEscape(*since)
		}
		res := d.srv.Do(t, http.MethodGet, path, d.token, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		*since = res.String("next_batch")
		if cond(res.Body) {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// waitFor polls cond until it holds (20 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func field(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// TestE2EEAcrossServers: alice@hs1 and bob@hs2 share a room; each finds
// the other's device keys, claims a one-time key, exchanges to-device
// messages and hears of the other's device changes.
func TestE2EEAcrossServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = time.Second
	})
	hs1, hs2 := servers[0], servers[1]
	alice := newDevice(t, hs1, "alice")
	bob := newDevice(t, hs2, "bob")
	res := hs1.Do(t, http.MethodPost, v3+"/createRoom", alice.token, obj{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	apptest.MustStatus(t, hs2.Do(t, http.MethodPost, v3+"/join/"+url.PathEscape(room)+"?server_name=hs1.test", bob.token, obj{}), http.StatusOK)
	var aliceSince, bobSince string
	alice.follow(t, &aliceSince, "bob's join", func(b map[string]any) bool {
		for _, e := range asSlice(field(b, "rooms", "join", room, "timeline", "events")) {
			if field(e, "state_key") == bob.user {
				return true
			}
		}
		return false
	})
	bob.follow(t, &bobSince, "the room on hs2", func(b map[string]any) bool { return field(b, "rooms", "join", room) != nil })

	t.Run("keys of a remote user are queried and claimed over federation", func(t *testing.T) {
		bob.upload(t, 2)
		q := hs1.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{bob.user: []string{}}})
		apptest.MustStatus(t, q, http.StatusOK)
		if field(q.Body, "device_keys", bob.user, bob.device, "keys", "ed25519:"+bob.device) != bob.pub() {
			t.Fatalf("alice's query of bob: %s", q.Raw)
		}
		seen := map[string]bool{}
		for range 2 {
			c := hs1.Do(t, http.MethodPost, v3+"/keys/claim", alice.token, obj{"one_time_keys": obj{bob.user: obj{bob.device: "signed_curve25519"}}})
			apptest.MustStatus(t, c, http.StatusOK)
			keys, _ := field(c.Body, "one_time_keys", bob.user, bob.device).(map[string]any)
			if len(keys) != 1 {
				t.Fatalf("claim: %s", c.Raw)
			}
			for k := range keys {
				if seen[k] {
					t.Fatalf("key %s claimed twice", k)
				}
				seen[k] = true
			}
		}
	})

	t.Run("a to-device message reaches the remote device once", func(t *testing.T) {
		for range 2 { // the retry of the same txnId
			apptest.MustStatus(t, hs1.Do(t, http.MethodPut, v3+"/sendToDevice/m.room_key_request/fed1", alice.token,
				obj{"messages": obj{bob.user: obj{bob.device: obj{"hello": "bob"}}}}), http.StatusOK)
		}
		var got []any
		bob.follow(t, &bobSince, "the to-device message", func(b map[string]any) bool {
			got = append(got, asSlice(field(b, "to_device", "events"))...)
			return len(got) > 0
		})
		if len(got) != 1 || field(got[0], "sender") != alice.user || field(got[0], "content", "hello") != "bob" {
			t.Fatalf("bob got %v", got)
		}
		// Nothing more comes (the retry was not sent again).
		res := hs2.Do(t, http.MethodGet, v3+"/sync?timeout=1500&since="+url.QueryEscape(bobSince), bob.token, nil)
		if evs := asSlice(field(res.Body, "to_device", "events")); len(evs) != 0 {
			t.Fatalf("a second delivery: %v", evs)
		}
	})

	t.Run("a device change on one server reaches the other's trackers", func(t *testing.T) {
		alice.upload(t, 0)
		bob.follow(t, &bobSince, "alice in device_lists.changed", func(b map[string]any) bool {
			return slices.Contains(strs(field(b, "device_lists", "changed")), alice.user)
		})
		var q apptest.Response
		waitFor(t, "alice's keys from hs2", func() bool {
			q = hs2.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
			return field(q.Body, "device_keys", alice.user, alice.device) != nil
		})
		// A second device of bob's logs in and uploads: alice hears of it.
		bob2 := &device{srv: hs2, user: bob.user, priv: bob.priv}
		res := hs2.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.password",
			"identifier": obj{"type": "m.id.user", "user": "bob"}, "password": "correct horse battery"})
		apptest.MustStatus(t, res, http.StatusOK)
		bob2.device, bob2.token = res.String("device_id"), res.String("access_token")
		bob2.upload(t, 0)
		// Each change is a device_lists.changed (the one seen first may be
		// of bob's first upload, whose EDU can come after alice's query):
		// alice follows them until her query shows the new device.
		alice.follow(t, &aliceSince, "bob's new device from hs1 after bob in device_lists.changed", func(b map[string]any) bool {
			if !slices.Contains(strs(field(b, "device_lists", "changed")), bob.user) {
				return false
			}
			q = hs1.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{bob.user: []string{}}})
			return field(q.Body, "device_keys", bob.user, bob2.device) != nil
		})
	})

	t.Run("cross-signing keys reach the other server's trackers", func(t *testing.T) {
		_, master, _ := ed25519.GenerateKey(nil)
		_, self, _ := ed25519.GenerateKey(nil)
		mpub := signing.EncodeBase64(master.Public().(ed25519.PublicKey))
		spub := signing.EncodeBase64(self.Public().(ed25519.PublicKey))
		body := obj{
			"master_key": obj{"user_id": alice.user, "usage": []string{"master"}, "keys": obj{"ed25519:" + mpub: mpub}},
			"self_signing_key": sign(t, obj{"user_id": alice.user, "usage": []string{"self_signing"},
				"keys": obj{"ed25519:" + spub: spub}}, alice.user, "ed25519:"+mpub, master),
		}
		apptest.MustStatus(t, hs1.Do(t, http.MethodPost, v3+"/keys/device_signing/upload", alice.token, body), http.StatusOK)
		bob.follow(t, &bobSince, "alice's cross-signing change", func(b map[string]any) bool {
			return slices.Contains(strs(field(b, "device_lists", "changed")), alice.user)
		})
		q := hs2.Do(t, http.MethodPost, v3+"/keys/query", bob.token, obj{"device_keys": obj{alice.user: []string{}}})
		if field(q.Body, "master_keys", alice.user, "keys", "ed25519:"+mpub) != mpub ||
			field(q.Body, "self_signing_keys", alice.user, "keys", "ed25519:"+spub) != spub {
			t.Fatalf("alice's cross-signing keys from hs2: %s", q.Raw)
		}
	})

	t.Run("a remote user who leaves the last shared room is in device_lists.left", func(t *testing.T) {
		apptest.MustStatus(t, hs2.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/leave", bob.token, obj{}), http.StatusOK)
		alice.follow(t, &aliceSince, "bob in device_lists.left", func(b map[string]any) bool {
			if slices.Contains(strs(field(b, "device_lists", "changed")), bob.user) &&
				slices.Contains(strs(field(b, "device_lists", "left")), bob.user) {
				t.Fatalf("bob both changed and left: %v", field(b, "device_lists"))
			}
			return slices.Contains(strs(field(b, "device_lists", "left")), bob.user)
		})
	})
}
