package clientapi_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// e2eeDevice is a logged-in device with its own ed25519 identity key, as
// an E2EE client has.
type e2eeDevice struct {
	user, device, token string
	key                 devKey
}

// devKey is a device's ed25519 identity key, its key id ed25519:<device>
// (signing.Key would refuse device ids with base64's + and /).
type devKey struct {
	priv ed25519.PrivateKey
	id   string
}

func newDevKey(t *testing.T, device string) devKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return devKey{priv: priv, id: "ed25519:" + device}
}

func (k devKey) ID() string             { return k.id }
func (k devKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }
func (k devKey) PublicBase64() string {
	return signing.EncodeBase64(k.priv.Public().(ed25519.PublicKey))
}

// newE2EEDevice registers localpart (when not yet) and logs a new device in.
func newE2EEDevice(t *testing.T, s *apptest.Server, localpart string) *e2eeDevice {
	t.Helper()
	res := s.Do(t, http.MethodGet, v3+"/register/available?username="+localpart, "", nil)
	if res.Status == http.StatusOK {
		s.Register(t, localpart, pw)
	}
	login := loginPassword(t, s, localpart, pw, obj{"initial_device_display_name": localpart + "'s phone"})
	apptest.MustStatus(t, login, http.StatusOK)
	d := &e2eeDevice{user: login.String("user_id"), device: login.String("device_id"), token: login.String("access_token")}
	d.key = newDevKey(t, d.device)
	return d
}

// newE2EEDeviceWithID logs a device of an existing user in with the
// device id it chooses.
func newE2EEDeviceWithID(t *testing.T, s *apptest.Server, localpart, device string) *e2eeDevice {
	t.Helper()
	login := loginPassword(t, s, localpart, pw, obj{"device_id": device})
	apptest.MustStatus(t, login, http.StatusOK)
	d := &e2eeDevice{user: login.String("user_id"), device: login.String("device_id"), token: login.String("access_token")}
	d.key = newDevKey(t, d.device)
	return d
}

// sign signs obj as the device (signatures[user][ed25519:device]).
func (d *e2eeDevice) sign(t *testing.T, obj obj) obj {
	t.Helper()
	return signWith(t, obj, d.user, d.key)
}

// signer is a key that signs JSON: a device's (signing.Key) or a
// cross-signing key, whose key id holds characters signing.Key refuses.
type signer interface {
	ID() string
	Sign(msg []byte) []byte
}

func signWith(t *testing.T, o obj, entity string, k signer) obj {
	t.Helper()
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	v, err := canonicaljson.ParseLenient(raw)
	if err != nil {
		t.Fatal(err)
	}
	sig := signing.EncodeBase64(k.Sign(signing.SigningBytes(v)))
	if v, err = signing.AddSignature(v, entity, k.ID(), sig); err != nil {
		t.Fatal(err)
	}
	var out obj
	if err := json.Unmarshal(canonicaljson.Encode(v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// deviceKeys is the device's signed device_keys object.
func (d *e2eeDevice) deviceKeys(t *testing.T) obj {
	t.Helper()
	return d.sign(t, obj{
		"user_id":    d.user,
		"device_id":  d.device,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys": obj{
			"curve25519:" + d.device: "curve" + d.device,
			"ed25519:" + d.device:    d.key.PublicBase64(),
		},
	})
}

// signedKey is a signed_curve25519 key object signed by the device.
func (d *e2eeDevice) signedKey(t *testing.T, key string, fallback bool) obj {
	t.Helper()
	o := obj{"key": key}
	if fallback {
		o["fallback"] = true
	}
	return d.sign(t, o)
}

// upload posts /keys/upload and returns the response.
func (d *e2eeDevice) upload(t *testing.T, s *apptest.Server, body obj) apptest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, v3+"/keys/upload", d.token, body)
}

// csKey is a cross-signing key: its key id is ed25519:<public key>.
type csKey struct{ priv ed25519.PrivateKey }

func (k csKey) PublicBase64() string {
	return signing.EncodeBase64(k.priv.Public().(ed25519.PublicKey))
}
func (k csKey) ID() string             { return "ed25519:" + k.PublicBase64() }
func (k csKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// crossSigningKey is a cross-signing key object of user for usage.
func crossSigningKey(user, usage string, k csKey) obj {
	return obj{"user_id": user, "usage": []string{usage}, "keys": obj{k.ID(): k.PublicBase64()}}
}

// genKey makes a cross-signing key.
func genKey(t *testing.T) csKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return csKey{priv: priv}
}

// e2eeSync is the E2EE part of a /sync answer.
type e2eeSync struct {
	NextBatch string `json:"next_batch"`
	ToDevice  struct {
		Events []struct {
			Sender  string         `json:"sender"`
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	} `json:"to_device"`
	DeviceLists struct {
		Changed []string `json:"changed"`
		Left    []string `json:"left"`
	} `json:"device_lists"`
	OTKCount      map[string]int `json:"device_one_time_keys_count"`
	FallbackTypes []string       `json:"device_unused_fallback_key_types"`
}

func e2eeSyncOf(t *testing.T, s *apptest.Server, token, since string) e2eeSync {
	t.Helper()
	q := url.Values{"timeout": {"0"}}
	if since != "" {
		q.Set("since", since)
	}
	res := s.Do(t, http.MethodGet, v3+"/sync?"+q.Encode(), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var out e2eeSync
	if err := json.Unmarshal(res.Raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.FallbackTypes == nil {
		t.Fatalf("sync lacks device_unused_fallback_key_types: %s", res.Raw)
	}
	return out
}

// canonical is obj as canonical JSON, for comparisons.
func canonical(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c, err := canonicaljson.Canonicalize(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(c)
}

// queryRow reads one row of the server's database into dest.
func queryRow(t *testing.T, s *apptest.Server, sql string, args []any, dest ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		t.Fatal(err)
	}
}

// waitForWaiters polls until n syncs wait on the server (a long-poll
// parked), so that the change a test makes next must wake it.
func waitForWaiters(t *testing.T, s *apptest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.App.SyncWaiters() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d syncs waiting, want %d", s.App.SyncWaiters(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// longPoll starts a /sync with a long timeout and returns its answer's
// channel once the sync waits.
func longPoll(t *testing.T, s *apptest.Server, token, since string) <-chan e2eeSync {
	t.Helper()
	done := make(chan e2eeSync, 1)
	before := s.App.SyncWaiters()
	go func() {
		res := s.Do(t, http.MethodGet, v3+"/sync?timeout=20000&since="+url.QueryEscape(since), token, nil)
		var out e2eeSync
		_ = json.Unmarshal(res.Raw, &out)
		done <- out
	}()
	waitForWaiters(t, s, before+1)
	return done
}
