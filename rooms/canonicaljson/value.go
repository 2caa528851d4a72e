// Package canonicaljson implements Matrix's canonical JSON (spec appendices,
// "Canonical JSON"): a strict parser for room versions 6 and later and for
// client request bodies, a lenient one for the events of older room
// versions, a small immutable JSON value type, and the canonical encoder
// (keys sorted by code point, no insignificant whitespace, UTF-8, minimal
// escapes) that hashing and signing depend on byte for byte.
//
// It imports only the standard library; every other package may use it.
package canonicaljson

import (
	"slices"
	"strconv"
	"strings"
)

// Kind is the JSON type of a Value.
type Kind uint8

const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is an immutable JSON value. The zero Value is null. Objects keep
// their members sorted by key, without duplicates, so that encoding is
// canonical without further work and lookups are binary searches.
type Value struct {
	kind Kind
	b    bool
	str  string // the decoded string, or a number's canonical literal
	arr  []Value
	obj  []Member
}

// Member is one key/value pair of an object.
type Member struct {
	Key   string
	Value Value
}

// Kind returns the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// Str returns the string of a String value.
func (v Value) Str() (string, bool) {
	if v.kind != String {
		return "", false
	}
	return v.str, true
}

// Bool returns the boolean of a Bool value.
func (v Value) Bool() (b, ok bool) { return v.b, v.kind == Bool }

// Int returns the value of an integer Number that fits an int64.
func (v Value) Int() (int64, bool) {
	if v.kind != Number {
		return 0, false
	}
	n, err := strconv.ParseInt(v.str, 10, 64)
	return n, err == nil
}

// NumberLiteral returns a Number's canonical literal ("" for other kinds).
func (v Value) NumberLiteral() string {
	if v.kind != Number {
		return ""
	}
	return v.str
}

// Array returns the elements of an Array value; do not modify them.
func (v Value) Array() []Value { return v.arr }

// Members returns the members of an Object value sorted by key; do not
// modify them.
func (v Value) Members() []Member { return v.obj }

// Len is the number of elements or members.
func (v Value) Len() int { return len(v.arr) + len(v.obj) }

// Get returns the member of an object with that key.
func (v Value) Get(key string) (Value, bool) {
	i, ok := slices.BinarySearchFunc(v.obj, key, func(m Member, k string) int { return strings.Compare(m.Key, k) })
	if !ok {
		return Value{}, false
	}
	return v.obj[i].Value, true
}

// Has reports whether the object has the key.
func (v Value) Has(key string) bool {
	_, ok := v.Get(key)
	return ok
}

// GetString returns the member with that key when it is a string.
func (v Value) GetString(key string) (string, bool) {
	m, ok := v.Get(key)
	if !ok {
		return "", false
	}
	return m.Str()
}

// With returns a copy of the object v with key set to val. A non-object v
// is treated as the empty object.
func (v Value) With(key string, val Value) Value {
	i, found := slices.BinarySearchFunc(v.obj, key, func(m Member, k string) int { return strings.Compare(m.Key, k) })
	out := make([]Member, 0, len(v.obj)+1)
	out = append(out, v.obj[:i]...)
	out = append(out, Member{Key: key, Value: val})
	if found {
		i++
	}
	out = append(out, v.obj[i:]...)
	return Value{kind: Object, obj: out}
}

// Without returns a copy of the object v without the given keys.
func (v Value) Without(keys ...string) Value {
	return v.Filter(func(k string) bool { return !slices.Contains(keys, k) })
}

// Filter returns a copy of the object v with only the members whose key
// keep accepts.
func (v Value) Filter(keep func(key string) bool) Value {
	out := make([]Member, 0, len(v.obj))
	for _, m := range v.obj {
		if keep(m.Key) {
			out = append(out, m)
		}
	}
	return Value{kind: Object, obj: out}
}

// NullValue returns JSON null.
func NullValue() Value { return Value{} }

// BoolValue returns a JSON boolean.
func BoolValue(b bool) Value { return Value{kind: Bool, b: b} }

// StringValue returns a JSON string.
func StringValue(s string) Value { return Value{kind: String, str: s} }

// IntValue returns a JSON integer. Callers keep it within ±(2^53−1) where
// strict canonical JSON is required.
func IntValue(n int64) Value { return Value{kind: Number, str: strconv.FormatInt(n, 10)} }

// ArrayValue returns a JSON array of the given elements.
func ArrayValue(elems ...Value) Value {
	if elems == nil {
		elems = []Value{}
	}
	return Value{kind: Array, arr: elems}
}

// ObjectValue returns a JSON object of the given members. They are sorted;
// of members with the same key the last wins.
func ObjectValue(members ...Member) Value {
	ms := slices.Clone(members)
	if ms == nil {
		ms = []Member{}
	}
	ms, _, _ = sortMembers(ms)
	return Value{kind: Object, obj: ms}
}

// StringsValue returns a JSON array of strings.
func StringsValue[S ~string](ss []S) Value {
	elems := make([]Value, len(ss))
	for i, s := range ss {
		elems[i] = StringValue(string(s))
	}
	return Value{kind: Array, arr: elems}
}

// sortMembers sorts ms by key and removes duplicates, keeping the last
// occurrence; it reports the first duplicated key, if any.
func sortMembers(ms []Member) (out []Member, dup string, hasDup bool) {
	sorted := true
	for i := 1; i < len(ms); i++ {
		if ms[i-1].Key >= ms[i].Key {
			sorted = false
			break
		}
	}
	if sorted {
		return ms, "", false
	}
	slices.SortStableFunc(ms, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
	out = ms[:0]
	for i, m := range ms {
		if i+1 < len(ms) && ms[i+1].Key == m.Key {
			if !hasDup {
				dup, hasDup = m.Key, true
			}
			continue // a later member with the same key wins
		}
		out = append(out, m)
	}
	return out, dup, hasDup
}

// MarshalJSON encodes v canonically, so that a Value can be embedded in
// structs given to encoding/json.
func (v Value) MarshalJSON() ([]byte, error) { return Append(nil, v), nil }

// Equal reports whether a and b are the same JSON value.
func Equal(a, b Value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case Null:
		return true
	case Bool:
		return a.b == b.b
	case Number, String:
		return a.str == b.str
	case Array:
		return slices.EqualFunc(a.arr, b.arr, Equal)
	default:
		return slices.EqualFunc(a.obj, b.obj, func(x, y Member) bool { return x.Key == y.Key && Equal(x.Value, y.Value) })
	}
}
