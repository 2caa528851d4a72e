package canonicaljson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzCanonicalJSON checks that canonicalising is idempotent, that its
// output re-parses strictly whenever the input parsed strictly, and that it
// means the same as what encoding/json reads.
func FuzzCanonicalJSON(f *testing.F) {
	for _, tc := range specExamples {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(`{"a":-0,"b":1e10,"c":[1.5,"\ud83d\ude00\u0001"],"a ":{"":null}}`))
	f.Add([]byte(`{"x":1,"x":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, strict := range []bool{true, false} {
			out, err := Canonicalize(data, strict)
			if verr := Validate(data, strict); (verr == nil) != (err == nil) {
				t.Fatalf("strict=%v: Validate says %v, Parse says %v", strict, verr, err)
			}
			if err != nil {
				continue
			}
			again, err := Canonicalize(out, strict)
			if err != nil {
				t.Fatalf("strict=%v: output %q does not re-parse: %v", strict, out, err)
			}
			if !bytes.Equal(out, again) {
				t.Fatalf("strict=%v: not idempotent: %q then %q", strict, out, again)
			}
			if v, _ := Parse(out, strict); Size(v) != len(out) {
				t.Fatalf("Size = %d, want %d", Size(v), len(out))
			}
			if !json.Valid(out) {
				t.Fatalf("strict=%v: output %q is not JSON", strict, out)
			}
			if strict {
				var a, b any
				if json.Unmarshal(data, &a) == nil && json.Unmarshal(out, &b) == nil {
					if !reflect.DeepEqual(a, b) {
						t.Fatalf("meaning changed: %#v vs %#v", a, b)
					}
				}
			}
		}
	})
}
