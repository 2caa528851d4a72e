package signing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// The key of the spec's "Cryptographic Test Vectors" (appendices).
const (
	specSeed  = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
	specKeyID = "ed25519:1"
)

func specKey(t testing.TB) Key {
	t.Helper()
	k, err := ParseSeed(specKeyID, specSeed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func canonical(t *testing.T, s string) []byte {
	t.Helper()
	b, err := canonicaljson.Canonicalize([]byte(s), true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpecJSONSigningVectors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty object", `{}`, `{
    "signatures": {
        "domain": {
            "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
        }
    }
}`},
		{"data values", `{"one": 1, "two": "Two"}`, `{
    "one": 1,
    "signatures": {
        "domain": {
            "ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
        }
    },
    "two": "Two"
}`},
	}
	k := specKey(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SignJSON([]byte(tc.in), "domain", k)
			if err != nil {
				t.Fatal(err)
			}
			if want := canonical(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			obj, err := canonicaljson.ParseStrict(got)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(obj, "domain", specKeyID, k.Public()); err != nil {
				t.Errorf("own signature does not verify: %v", err)
			}
		})
	}
}

func TestSignKeepsOtherSignaturesAndUnsigned(t *testing.T) {
	k := specKey(t)
	other, err := Generate("ed25519:other")
	if err != nil {
		t.Fatal(err)
	}
	in := `{"a":1,"unsigned":{"age_ts":5},"signatures":{"elsewhere":{"ed25519:x":"abc"}}}`
	first, err := SignJSON([]byte(in), "domain", k)
	if err != nil {
		t.Fatal(err)
	}
	second, err := SignJSON(first, "domain", other)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := canonicaljson.ParseStrict(second)
	if err != nil {
		t.Fatal(err)
	}
	if sig, ok := Signature(obj, "elsewhere", "ed25519:x"); !ok || sig != "abc" {
		t.Errorf("foreign signature lost: %q %v", sig, ok)
	}
	if u, ok := obj.Get("unsigned"); !ok || string(canonicaljson.Encode(u)) != `{"age_ts":5}` {
		t.Errorf("unsigned lost: %s", canonicaljson.Encode(u))
	}
	tests := []struct {
		name  string
		keyID string
		key   Key
	}{
		{"first key", specKeyID, k},
		{"second key", "ed25519:other", other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(obj, "domain", tc.keyID, tc.key.Public()); err != nil {
				t.Error(err)
			}
		})
	}
	if got := KeyIDs(obj, "domain"); len(got) != 2 {
		t.Errorf("KeyIDs = %v, want two", got)
	}
}

func TestVerifyRejects(t *testing.T) {
	k := specKey(t)
	signed, err := SignJSON([]byte(`{"one":1,"unsigned":{"x":1}}`), "domain", k)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := canonicaljson.ParseStrict(signed)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := Generate("ed25519:1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		obj    canonicaljson.Value
		entity string
		pub    []byte
		want   error
	}{
		{"tampered value", obj.With("one", canonicaljson.IntValue(2)), "domain", k.Public(), ErrBadSignature},
		{"added key", obj.With("two", canonicaljson.IntValue(2)), "domain", k.Public(), ErrBadSignature},
		{"wrong public key", obj, "domain", stranger.Public(), ErrBadSignature},
		{"other entity", obj, "elsewhere", k.Public(), ErrNoSignature},
		{"bad public key", obj, "domain", []byte{1, 2}, ErrBadKey},
		{"garbage signature", mustAdd(t, obj, "domain", specKeyID, "!!"), "domain", k.Public(), ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.obj, tc.entity, specKeyID, tc.pub); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("unsigned may change", func(t *testing.T) {
		if err := Verify(obj.With("unsigned", canonicaljson.IntValue(9)), "domain", specKeyID, k.Public()); err != nil {
			t.Error(err)
		}
	})
}

func mustAdd(t *testing.T, obj canonicaljson.Value, entity, keyID, sig string) canonicaljson.Value {
	t.Helper()
	out, err := AddSignature(obj, entity, keyID, sig)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeys(t *testing.T) {
	k, err := Generate("ed25519:a_AbCd")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSeed(k.ID(), k.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Public(), k.Public()) {
		t.Error("seed round trip changed the key")
	}
	pub, err := ParsePublicKey(k.PublicBase64())
	if err != nil || !bytes.Equal(pub, k.Public()) {
		t.Errorf("public key round trip: %v", err)
	}
	bad := []struct{ name, keyID, seed string }{
		{"no algorithm", "a_AbCd", specSeed},
		{"other algorithm", "curve25519:1", specSeed},
		{"empty version", "ed25519:", specSeed},
		{"bad version character", "ed25519:a-b", specSeed},
		{"short seed", "ed25519:1", "YJDBA9Xnr2sVqXD9"},
		{"not base64", "ed25519:1", "***"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSeed(tc.keyID, tc.seed); !errors.Is(err, ErrBadKey) {
				t.Errorf("got %v, want ErrBadKey", err)
			}
		})
	}
}

func TestBase64(t *testing.T) {
	// The examples of appendices, "Unpadded Base64".
	tests := []struct{ in, want string }{
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := EncodeBase64([]byte(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			for _, enc := range []string{tc.want, tc.want + "=="[:(4-len(tc.want)%4)%4]} {
				got, err := DecodeBase64(enc)
				if err != nil || string(got) != tc.in {
					t.Errorf("decode %q = %q, %v", enc, got, err)
				}
			}
		})
	}
	t.Run("url-safe alphabet", func(t *testing.T) {
		b := []byte{0xfb, 0xff}
		if got := EncodeURLBase64(b); got != "-_8" {
			t.Errorf("got %q", got)
		}
		if got := EncodeBase64(b); got != "+/8" {
			t.Errorf("got %q", got)
		}
		if got, err := DecodeURLBase64("-_8"); err != nil || !bytes.Equal(got, b) {
			t.Errorf("decode: %x %v", got, err)
		}
	})
}
