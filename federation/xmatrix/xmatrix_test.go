package xmatrix

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/signing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   Auth
		err    bool
	}{
		{"spec example", `X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."`,
			Auth{"origin.hs.example.com", "destination.hs.example.com", "ed25519:key1", "ABCDEF..."}, false},
		{"unquoted with colons, no destination", `X-Matrix origin=hs1.test:8448,key=ed25519:a_bc,sig=abc+/def`,
			Auth{"hs1.test:8448", "", "ed25519:a_bc", "abc+/def"}, false},
		{"spaces, tabs, upper-case names and scheme", "x-matrix   ORIGIN = \"hs1\" ,\tKey=\"ed25519:1\" , Sig=\"s\"",
			Auth{"hs1", "", "ed25519:1", "s"}, false},
		{"backslash escapes", `X-Matrix origin="h\s1",key="ed25519:\"1",sig="a\\b"`,
			Auth{"hs1", "", `ed25519:"1`, `a\b`}, false},
		{"unknown parameters ignored", `X-Matrix foo="bar, baz",origin=hs1,key="ed25519:1",sig="s",x=y`,
			Auth{"hs1", "", "ed25519:1", "s"}, false},
		{"other scheme", `Bearer abc`, Auth{}, true},
		{"no parameters", `X-Matrix `, Auth{}, true},
		{"missing sig", `X-Matrix origin=hs1,key="ed25519:1"`, Auth{}, true},
		{"repeated origin", `X-Matrix origin=hs1,origin=hs2,key="ed25519:1",sig=s`, Auth{}, true},
		{"unterminated quote", `X-Matrix origin="hs1,key="ed25519:1",sig=s`, Auth{}, true},
		{"missing comma", `X-Matrix origin=hs1 key="ed25519:1",sig=s`, Auth{}, true},
		{"bad origin", `X-Matrix origin="bad name",key="ed25519:1",sig=s`, Auth{}, true},
		{"bad destination", `X-Matrix origin=hs1,destination="",key="ed25519:1",sig=s`, Auth{}, true},
		{"empty value", `X-Matrix origin=,key="ed25519:1",sig=s`, Auth{}, true},
		{"control character", "X-Matrix origin=\"hs\x011\",key=\"ed25519:1\",sig=s", Auth{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.header)
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Parse = %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
			// Formatting and parsing again gives the same header.
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q = %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestStringIsWhatOlderServersExpect(t *testing.T) {
	got := Auth{"hs1.test", "hs2.test", "ed25519:a", "c2ln"}.String()
	want := `X-Matrix origin="hs1.test",destination="hs2.test",key="ed25519:a",sig="c2ln"`
	if got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

// keysOf serves one server's key.
func keysOf(server id.ServerName, k signing.Key) KeyFunc {
	return func(_ context.Context, s id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		if s != server || keyID != k.ID() {
			return nil, errors.New("unknown key")
		}
		return k.Public(), nil
	}
}

func TestSignVerify(t *testing.T) {
	k, err := signing.Generate("ed25519:a1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signing.Generate("ed25519:a1")
	body := []byte(`{"pdus":[],"edus":[{"edu_type":"m.typing","content":{"x":1.5}}]}`)
	uri := "/_matrix/federation/v1/send/txn1?x=1"
	header, err := Sign(k, "hs1.test", "hs2.test", "PUT", uri, body)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	origin, err := Verify(ctx, []string{"Bearer nope", header}, "hs2.test", "PUT", uri, body, keysOf("hs1.test", k))
	if err != nil || origin != "hs1.test" {
		t.Fatalf("Verify = %q, %v", origin, err)
	}
	// Whitespace and key order of the body do not matter: the content is
	// signed as canonical JSON.
	reordered := []byte(`{ "edus":[{"content":{"x":1.5},"edu_type":"m.typing"}], "pdus":[] }`)
	if _, err := Verify(ctx, []string{header}, "hs2.test", "PUT", uri, reordered, keysOf("hs1.test", k)); err != nil {
		t.Fatalf("reordered body: %v", err)
	}
	noDest, _ := Parse(header)
	noDest.Destination = ""
	unauthorized := []struct {
		name    string
		headers []string
		self    id.ServerName
		method  string
		uri     string
		body    []byte
		keys    KeyFunc
	}{
		{"no header", nil, "hs2.test", "PUT", uri, body, keysOf("hs1.test", k)},
		{"other destination", []string{header}, "hs3.test", "PUT", uri, body, keysOf("hs1.test", k)},
		{"other method", []string{header}, "hs2.test", "POST", uri, body, keysOf("hs1.test", k)},
		{"other uri", []string{header}, "hs2.test", "PUT", uri + "&y=2", body, keysOf("hs1.test", k)},
		{"other body", []string{header}, "hs2.test", "PUT", uri, []byte(`{"pdus":[]}`), keysOf("hs1.test", k)},
		{"no body", []string{header}, "hs2.test", "PUT", uri, nil, keysOf("hs1.test", k)},
		{"forged key", []string{header}, "hs2.test", "PUT", uri, body, keysOf("hs1.test", other)},
		{"unknown key", []string{header}, "hs2.test", "PUT", uri, body, keysOf("hs9.test", k)},
		{"destination left out, signed for hs2, received by hs3", []string{noDest.String()}, "hs3.test", "PUT", uri, body, keysOf("hs1.test", k)},
		{"claims to be us", []string{header}, "hs1.test", "PUT", uri, body, keysOf("hs1.test", k)},
		{"malformed", []string{`X-Matrix origin=hs1.test`}, "hs2.test", "PUT", uri, body, keysOf("hs1.test", k)},
	}
	for _, tt := range unauthorized {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(ctx, tt.headers, tt.self, tt.method, tt.uri, tt.body, tt.keys)
			if !errors.Is(err, mxerr.Unauthorized) {
				t.Fatalf("Verify = %v, want M_UNAUTHORIZED", err)
			}
		})
	}
	// An older server leaves destination out but signs with it: accepted.
	if _, err := Verify(ctx, []string{noDest.String()}, "hs2.test", "PUT", uri, body, keysOf("hs1.test", k)); err != nil {
		t.Errorf("header without destination: %v", err)
	}
	if _, err := Verify(ctx, []string{header}, "hs2.test", "PUT", uri, []byte("{nope"), keysOf("hs1.test", k)); !errors.Is(err, mxerr.NotJSON) {
		t.Errorf("bad JSON body: %v, want M_NOT_JSON", err)
	}
}

func TestSignWithoutBodyOmitsContent(t *testing.T) {
	k, _ := signing.Generate("ed25519:a1")
	h1, _ := Sign(k, "hs1", "hs2", "GET", "/_matrix/federation/v1/version", nil)
	obj, _ := requestObject("GET", "/_matrix/federation/v1/version", "hs1", "hs2", nil)
	if obj.Has("content") {
		t.Fatal("a request without a body must not sign a content field")
	}
	if !strings.Contains(h1, `destination="hs2"`) {
		t.Errorf("header %s lacks the destination", h1)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF..."`)
	f.Add(`X-Matrix origin=hs1:8448,key=ed25519:1,sig=abc`)
	f.Add("x-matrix  a=\"\\\"\" ,\torigin=\"h\\s\",key=k,sig=s")
	f.Fuzz(func(t *testing.T, header string) {
		a, err := Parse(header)
		if err != nil {
			return
		}
		again, err := Parse(a.String())
		if err != nil {
			t.Fatalf("String of a parsed header does not parse: %q: %v", a.String(), err)
		}
		if again != a {
			t.Fatalf("round trip changed %+v into %+v", a, again)
		}
	})
}

// TestSignedBytesAreTheSpecsObject checks the signature against one made
// by hand over the spec's step-1 object written out as canonical JSON (keys
// sorted, no whitespace), with the spec appendix's example seed.
func TestSignedBytesAreTheSpecsObject(t *testing.T) {
	k, err := signing.ParseSeed("ed25519:1", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, method, uri string
		body              []byte
		canonical         string
	}{
		{"with a body", "PUT", "/_matrix/federation/v1/send/1?a=b", []byte(`{ "pdus": [], "edus": [{"b": 2, "a": "\u00e9"}] }`),
			`{"content":{"edus":[{"a":"é","b":2}],"pdus":[]},"destination":"dest.example","method":"PUT","origin":"origin.example","uri":"/_matrix/federation/v1/send/1?a=b"}`},
		{"without a body", "GET", "/_matrix/federation/v1/version", nil,
			`{"destination":"dest.example","method":"GET","origin":"origin.example","uri":"/_matrix/federation/v1/version"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header, err := Sign(k, "origin.example", "dest.example", tt.method, tt.uri, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Parse(header)
			if err != nil {
				t.Fatal(err)
			}
			want := signing.EncodeBase64(k.Sign([]byte(tt.canonical)))
			if a.Signature != want || a.KeyID != "ed25519:1" || a.Origin != "origin.example" || a.Destination != "dest.example" {
				t.Errorf("header %s\nwant sig %s over %s", header, want, tt.canonical)
			}
		})
	}
}
