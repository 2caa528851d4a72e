package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
)

// The canonical JSON examples of the spec (appendices, "Canonical JSON").
func TestCanonicalJSONSpecExamples(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty object", `{}`, `{}`},
		{"whitespace removed", "{\n \"one\": 1,\n \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
		{"keys sorted", `{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
		{"nested objects and arrays", `{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}`,
			`{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
		{"non-ASCII unescaped", `{"a":"\u65E5\u672C\u8A9E"}`, `{"a":"日本語"}`},
		{"keys sorted by code point", `{"日":1,"本":2}`, `{"日":1,"本":2}`},
		{"short escapes and lower-case hex", `{"a":"\u0008\u000b\n\"\\\u001F/\u2028<"}`, "{\"a\":\"\\b\\u000b\\n\\\"\\\\\\u001f/\u2028<\"}"},
		{"null and false", `{"a":null,"b":false}`, `{"a":null,"b":false}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicalJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// The JSON signing vectors of the spec (appendices, "Signing JSON" test
// vectors) verify with verifySigned, and a changed value does not.
func TestVerifySignedSpecVectors(t *testing.T) {
	seed, err := base64.RawStdEncoding.DecodeString("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	public := base64.RawStdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
	sigs := func(s string) map[string]map[string]string {
		return map[string]map[string]string{"domain": {"ed25519:1": s}}
	}
	const emptySig = "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
	const dataSig = "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
	cases := []struct {
		name   string
		signed string
		sig    string
		keyID  string
		want   bool
	}{
		{"empty object", `{"signatures":{}}`, emptySig, "ed25519:1", true},
		{"object with data, unsigned ignored", `{"two":"Two","one":1,"unsigned":{"x":1}}`, dataSig, "ed25519:1", true},
		{"changed value", `{"one":2,"two":"Two"}`, dataSig, "ed25519:1", false},
		{"signature of another object", `{}`, dataSig, "ed25519:1", false},
		{"not an ed25519 key id", `{}`, emptySig, "curve25519:1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := map[string]map[string]string{"domain": {tc.keyID: tc.sig}}
			if tc.keyID == "ed25519:1" {
				s = sigs(tc.sig)
			}
			if got := verifySigned([]byte(tc.signed), s, []string{"bm90IGEga2V5", public}); got != tc.want {
				t.Fatalf("verifySigned = %v, want %v", got, tc.want)
			}
		})
	}
}
