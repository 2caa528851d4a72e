package keys

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// FuzzCheckDeviceKeys: whatever a client uploads, the checks never panic,
// and what they accept is the requester's own device, signed by the key
// it names.
func FuzzCheckDeviceKeys(f *testing.F) {
	const user, device = id.UserID("@alice:test"), id.DeviceID("DEV")
	k, err := signing.Generate("ed25519:" + string(device))
	if err != nil {
		f.Fatal(err)
	}
	valid, _ := json.Marshal(map[string]any{"user_id": user, "device_id": device,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2"},
		"keys":       map[string]string{"ed25519:DEV": k.PublicBase64(), "curve25519:DEV": "c"}})
	signed, err := signing.SignJSON(valid, string(user), k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(valid)
	f.Add([]byte(`{"user_id":"@alice:test","device_id":"DEV","algorithms":[],"keys":{"ed25519:DEV":"AAAA"}}`))
	f.Add([]byte(`{"user_id":"@alice:test","device_id":"DEV","algorithms":[1],"keys":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		obj, pub, err := checkDeviceKeys(raw, user, device)
		if err != nil {
			return
		}
		if u, _ := obj.GetString("user_id"); u != string(user) {
			t.Fatalf("accepted user_id %q", u)
		}
		if d, _ := obj.GetString("device_id"); d != string(device) {
			t.Fatalf("accepted device_id %q", d)
		}
		if len(pub) != ed25519.PublicKeySize || signing.Verify(obj, string(user), "ed25519:DEV", pub) != nil {
			t.Fatalf("accepted keys that do not verify: %s", raw)
		}
		// What is stored is canonical JSON and parses again.
		if _, err := canonicaljson.ParseStrict(canonicaljson.Encode(obj)); err != nil {
			t.Fatalf("stored form does not parse: %v", err)
		}
	})
}

// FuzzParseOneTimeKeys: key maps of any shape are refused or parsed into
// algorithm:key_id names, never a panic.
func FuzzParseOneTimeKeys(f *testing.F) {
	f.Add([]byte(`{"signed_curve25519:AAAA":{"key":"k","signatures":{"@alice:test":{"ed25519:DEV":"sig"}}}}`))
	f.Add([]byte(`{"curve25519:A":"k"}`))
	f.Add([]byte(`{"curve25519":"k",":":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in map[string]json.RawMessage
		if json.Unmarshal(raw, &in) != nil {
			return
		}
		keys, err := parseOneTimeKeys(in, "@alice:test", "DEV", nil, "one_time_keys")
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.Algorithm == "" || k.KeyID == "" {
				t.Fatalf("accepted %+v", k)
			}
		}
	})
}
