package canonicaljson

import (
	"encoding/json"
	"fmt"
)

// Canonicalize parses data (strictly or leniently) and returns its canonical
// encoding.
func Canonicalize(data []byte, strict bool) ([]byte, error) {
	v, err := Parse(data, strict)
	if err != nil {
		return nil, err
	}
	return Append(make([]byte, 0, len(data)), v), nil
}

// Marshal encodes a Go value as canonical JSON: encoding/json's encoding,
// then the strict rules (so a float field is an error, not a silent
// rounding).
func Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonicaljson: marshal: %w", err)
	}
	return Canonicalize(data, true)
}

// Encode returns the canonical encoding of v.
func Encode(v Value) []byte { return Append(nil, v) }

// Append appends the canonical encoding of v to dst.
func Append(dst []byte, v Value) []byte {
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		return append(dst, v.str...)
	case String:
		return appendString(dst, v.str)
	case Array:
		dst = append(dst, '[')
		for i, e := range v.arr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = Append(dst, e)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		for i, m := range v.obj {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.Key)
			dst = append(dst, ':')
			dst = Append(dst, m.Value)
		}
		return append(dst, '}')
	}
}

// AppendWithout appends the canonical encoding of the object v without the
// given top-level keys, without building a filtered copy first; hashing
// and signing use it to drop signatures, unsigned and hashes.
func AppendWithout(dst []byte, v Value, skip ...string) []byte {
	if v.kind != Object {
		return Append(dst, v)
	}
	dst = append(dst, '{')
	first := true
outer:
	for _, m := range v.obj {
		for _, s := range skip {
			if m.Key == s {
				continue outer
			}
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, m.Key)
		dst = append(dst, ':')
		dst = Append(dst, m.Value)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s with only the escapes the canonical grammar allows:
// \" \\ \b \t \n \f \r and \u00XX (lower-case hex) for the other control
// characters. Everything else, including U+2028 and DEL, is written as is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Size is len(Encode(v)), computed without encoding.
func Size(v Value) int {
	switch v.kind {
	case Null:
		return 4
	case Bool:
		if v.b {
			return 4
		}
		return 5
	case Number:
		return len(v.str)
	case String:
		return stringSize(v.str)
	case Array:
		n := 2 + max(len(v.arr)-1, 0)
		for _, e := range v.arr {
			n += Size(e)
		}
		return n
	default:
		n := 2 + max(len(v.obj)-1, 0)
		for _, m := range v.obj {
			n += stringSize(m.Key) + 1 + Size(m.Value)
		}
		return n
	}
}

func stringSize(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}
