package keyring

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// FuzzParseKeyResponse: no input panics, and whatever is accepted carries
// keys whose response verifies again with them (the kept Response is what
// a notary serves).
func FuzzParseKeyResponse(f *testing.F) {
	k, _ := signing.Generate("ed25519:f1")
	kr := New(Config{ServerName: "fuzz.test", Key: k}, &memStore{}, nil, nil)
	f.Add(kr.KeyDocument())
	f.Add([]byte(`{"server_name":"fuzz.test","verify_keys":{},"valid_until_ts":1}`))
	f.Add([]byte(`{"server_name":"fuzz.test","verify_keys":{"ed25519:x":{"key":"AAAA"}},"old_verify_keys":{"ed25519:o":{"key":"AAAA","expired_ts":5}},"valid_until_ts":1.5}`))
	now := time.Now()
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := ParseKeyResponse(raw, "fuzz.test", now)
		if err != nil {
			return
		}
		for _, sk := range keys {
			if sk.ExpiredTS != 0 {
				continue // old keys need not sign the response
			}
			obj, err := canonicaljson.ParseLenient(sk.Response)
			if err != nil {
				t.Fatalf("kept response does not parse: %v", err)
			}
			if err := signing.Verify(obj, "fuzz.test", sk.KeyID, sk.Key); err != nil {
				t.Fatalf("kept response no longer verifies with %s: %v", sk.KeyID, err)
			}
		}
	})
}
