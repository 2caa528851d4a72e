package canonicaljson

import (
	"errors"
	"strings"
	"testing"
)

// The examples of the spec's appendices, "Canonical JSON".
var specExamples = []struct {
	name, in, want string
}{
	{"empty object", `{}`, `{}`},
	{"whitespace removed", "{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
	{"keys sorted", "{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", `{"a":"1","b":"2"}`},
	{"keys sorted compact", `{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
	{"nested", `{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`, `{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
	{"utf-8 kept", `{"a": "日本語"}`, `{"a":"日本語"}`},
	{"sorted by code point", `{"本": 2, "日": 1}`, `{"日":1,"本":2}`},
	{"unicode escape decoded", `{"a": "\u65E5"}`, `{"a":"日"}`},
	{"null", `{"a": null}`, `{"a":null}`},
}

func TestSpecExamples(t *testing.T) {
	for _, tc := range specExamples {
		t.Run(tc.name, func(t *testing.T) {
			for _, strict := range []bool{true, false} {
				got, err := Canonicalize([]byte(tc.in), strict)
				if err != nil {
					t.Fatalf("strict=%v: %v", strict, err)
				}
				if string(got) != tc.want {
					t.Errorf("strict=%v: got %s, want %s", strict, got, tc.want)
				}
			}
		})
	}
	// The last example has -0 and 1e10; the exponent is not allowed by the
	// strict rules, so it is the lenient parser's normalisation.
	t.Run("negative zero and exponent", func(t *testing.T) {
		got, err := Canonicalize([]byte(`{"a": -0, "b": 1e10}`), false)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"a":0,"b":10000000000}`; string(got) != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if _, err := Canonicalize([]byte(`{"a": -0, "b": 1e10}`), true); !errors.Is(err, ErrFloat) {
			t.Errorf("strict: got %v, want ErrFloat", err)
		}
	})
}

func TestEscapes(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"short escapes", `"\b\t\n\f\r\"\\"`, `"\b\t\n\f\r\"\\"`},
		{"other controls as lower-case u00XX", `"\u0000\u001F\u000b"`, `"\u0000\u001f\u000b"`},
		{"solidus unescaped", `"\/"`, `"/"`},
		{"DEL and U+2028 raw", `"\u007f\u2028"`, "\"\x7f\u2028\""},
		{"html characters raw", `"\u003c\u003e\u0026"`, `"<>&"`},
		{"surrogate pair", `"\ud83d\ude00"`, `"😀"`},
		{"astral raw", `"😀"`, `"😀"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in), true)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStrictRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"float", `{"a":1.5}`, ErrFloat},
		{"integral float", `{"a":1.0}`, ErrFloat},
		{"exponent", `[1e3]`, ErrFloat},
		{"above 2^53-1", `9007199254740992`, ErrIntegerRange},
		{"below -(2^53-1)", `-9007199254740992`, ErrIntegerRange},
		{"huge", `123456789012345678901234567890`, ErrIntegerRange},
		{"duplicate key", `{"a":1,"b":2,"a":3}`, ErrDuplicateKey},
		{"nested duplicate key", `{"x":{"k":1,"k":1}}`, ErrDuplicateKey},
		{"duplicate empty key", `{"":1,"":2}`, ErrDuplicateKey},
		{"lone high surrogate", `"\ud800"`, ErrInvalidUnicode},
		{"lone low surrogate", `"\udc00x"`, ErrInvalidUnicode},
		{"invalid utf-8", "\"\xff\"", ErrInvalidUTF8},
		{"truncated utf-8", "{\"a\":\"\xe6\x97\"}", ErrInvalidUTF8},
		{"leading zero", `01`, ErrSyntax},
		{"trailing comma", `{"a":1,}`, ErrSyntax},
		{"trailing garbage", `{} x`, ErrSyntax},
		{"raw control character", "\"a\nb\"", ErrSyntax},
		{"single quotes", `{'a':1}`, ErrSyntax},
		{"bad escape", `"\x"`, ErrSyntax},
		{"NaN", `NaN`, ErrSyntax},
		{"empty", ``, ErrSyntax},
		{"unterminated", `{"a":[1,2`, ErrSyntax},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStrict([]byte(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error %q does not say where", err)
			}
			if err := Validate([]byte(tc.in), true); !errors.Is(err, tc.want) {
				t.Errorf("Validate: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStrictAcceptsLimits(t *testing.T) {
	got, err := Canonicalize([]byte(`[9007199254740991,-9007199254740991,-0]`), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[9007199254740991,-9007199254740991,0]`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestLenient(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"big integer kept exactly", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"float", `1.5`, `1.5`},
		{"integral float", `2.0`, `2`},
		{"small float uses exponent", `0.00001`, `1e-05`},
		{"large float uses exponent", `1.5e300`, `1.5e+300`},
		{"duplicate keys: last wins", `{"a":1,"b":0,"a":2}`, `{"a":2,"b":0}`},
		{"lone surrogate replaced", `"\ud800"`, "\"\uFFFD\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonicalize([]byte(tc.in), false)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("infinite number rejected", func(t *testing.T) {
		if _, err := ParseLenient([]byte(`1e999`)); !errors.Is(err, ErrIntegerRange) {
			t.Errorf("got %v, want ErrIntegerRange", err)
		}
	})
}

func TestIsNotJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"syntax", `{`, true},
		{"utf-8", "\"\xc0\"", true},
		{"float is JSON but not canonical", `1.5`, false},
		{"duplicate is JSON but not canonical", `{"a":1,"a":1}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStrict([]byte(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := IsNotJSON(err); got != tc.want {
				t.Errorf("IsNotJSON(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	type inner struct {
		Z string `json:"z"`
		A int    `json:"a"`
	}
	got, err := Marshal(map[string]any{"b": inner{Z: "<tag>", A: 1}, "a": []int{3, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[3,2],"b":{"a":1,"z":"<tag>"}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := Marshal(map[string]float64{"x": 0.5}); !errors.Is(err, ErrFloat) {
		t.Errorf("float: got %v, want ErrFloat", err)
	}
}

func TestValueEditing(t *testing.T) {
	v, err := ParseStrict([]byte(`{"b":1,"d":{"x":true},"a":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  Value
		want string
	}{
		{"with inserts in order", v.With("c", IntValue(3)), `{"a":"s","b":1,"c":3,"d":{"x":true}}`},
		{"with replaces", v.With("b", NullValue()), `{"a":"s","b":null,"d":{"x":true}}`},
		{"without", v.Without("a", "d"), `{"b":1}`},
		{"original untouched", v, `{"a":"s","b":1,"d":{"x":true}}`},
		{"object constructor sorts", ObjectValue(Member{"y", BoolValue(false)}, Member{"x", StringsValue([]string{"q"})}), `{"x":["q"],"y":false}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(Encode(tc.got)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if s, ok := v.GetString("a"); !ok || s != "s" {
		t.Errorf("GetString(a) = %q, %v", s, ok)
	}
	if n, ok := mustGet(t, v, "b").Int(); !ok || n != 1 {
		t.Errorf("Int(b) = %d, %v", n, ok)
	}
	if _, ok := v.Get("zz"); ok {
		t.Error("Get of a missing key succeeded")
	}
}

func mustGet(t *testing.T, v Value, key string) Value {
	t.Helper()
	m, ok := v.Get(key)
	if !ok {
		t.Fatalf("no key %q", key)
	}
	return m
}

func TestSize(t *testing.T) {
	for _, in := range []string{`{}`, `[]`, `[null,true,false,-12,"a\"\\\n\u0001é"]`, `{"k":{"x":[1,{}]},"é":""}`} {
		t.Run(in, func(t *testing.T) {
			v, err := ParseStrict([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := Size(v), len(Encode(v)); got != want {
				t.Errorf("Size = %d, len(Encode) = %d", got, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		strict bool
		want   error
	}{
		{"spec example", specExamples[4].in, true, nil},
		{"escaped duplicate key", `{"a":1,"\u0061":2}`, true, ErrDuplicateKey},
		{"duplicates in sibling objects are fine", `[{"a":1},{"a":2}]`, true, nil},
		{"duplicate after nested object", `{"a":{"b":1,"c":2},"a":3}`, true, ErrDuplicateKey},
		{"lenient duplicate", `{"a":1,"a":2}`, false, nil},
		{"lenient float", `[1.5e3]`, false, nil},
		{"strict float", `[1.5e3]`, true, ErrFloat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate([]byte(tc.in), tc.strict); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("no allocations", func(t *testing.T) {
		Validate(benchEvent, true) // warm the pool
		if n := testing.AllocsPerRun(100, func() {
			if err := Validate(benchEvent, true); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v allocations per Validate", n)
		}
	})
}
