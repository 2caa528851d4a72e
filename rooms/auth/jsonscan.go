package auth

import (
	"encoding/json"
	"errors"
)

// A small JSON object walker. The authorisation rules read a handful of
// keys from event contents thousands of times per state resolution; walking
// the bytes avoids building maps for keys nobody reads, and, unlike
// encoding/json's struct decoding, matches keys case-sensitively as the spec
// requires ("BAN" is not "ban").

var errBadJSON = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// eachMember calls fn for every member of the JSON object in data, in
// document order. key is only valid during the call. It fails when data is
// not an object.
func eachMember(data []byte, fn func(key []byte, value []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errBadJSON
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipSpace(data, i+1) != len(data) {
			return errBadJSON
		}
		return nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return errBadJSON
		}
		end, escaped, err := skipString(data, i)
		if err != nil {
			return err
		}
		key := data[i+1 : end-1]
		if escaped {
			var s string
			if err := json.Unmarshal(data[i:end], &s); err != nil {
				return errBadJSON
			}
			key = []byte(s)
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return errBadJSON
		}
		i = skipSpace(data, i+1)
		vend, err := skipValue(data, i)
		if err != nil {
			return err
		}
		if err := fn(key, data[i:vend]); err != nil {
			return err
		}
		i = skipSpace(data, vend)
		if i >= len(data) {
			return errBadJSON
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			if skipSpace(data, i+1) != len(data) {
				return errBadJSON
			}
			return nil
		default:
			return errBadJSON
		}
	}
}

// skipString returns the index after the closing quote of the string that
// starts at data[i], and whether it contains escapes.
func skipString(data []byte, i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, escaped, nil
		case c == '\\':
			escaped = true
			j++
		case c < 0x20:
			return 0, false, errBadJSON
		}
	}
	return 0, false, errBadJSON
}

// skipValue returns the index after the JSON value that starts at data[i].
func skipValue(data []byte, i int) (int, error) {
	return skipValueDepth(data, i, 0)
}

func skipValueDepth(data []byte, i, depth int) (int, error) {
	if i >= len(data) || depth > 512 {
		return 0, errBadJSON
	}
	switch c := data[i]; {
	case c == '"':
		end, _, err := skipString(data, i)
		return end, err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(data) || data[i] != '"' {
					return 0, errBadJSON
				}
				end, _, err := skipString(data, i)
				if err != nil {
					return 0, err
				}
				i = skipSpace(data, end)
				if i >= len(data) || data[i] != ':' {
					return 0, errBadJSON
				}
				i = skipSpace(data, i+1)
			}
			end, err := skipValueDepth(data, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipSpace(data, end)
			if i >= len(data) {
				return 0, errBadJSON
			}
			if data[i] == closer {
				return i + 1, nil
			}
			if data[i] != ',' {
				return 0, errBadJSON
			}
			i = skipSpace(data, i+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(data) && (data[j] >= '0' && data[j] <= '9' || data[j] == '.' || data[j] == 'e' || data[j] == 'E' || data[j] == '+' || data[j] == '-') {
			j++
		}
		return j, nil
	case c == 't':
		return literal(data, i, "true")
	case c == 'f':
		return literal(data, i, "false")
	case c == 'n':
		return literal(data, i, "null")
	}
	return 0, errBadJSON
}

func literal(data []byte, i int, word string) (int, error) {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return 0, errBadJSON
	}
	return i + len(word), nil
}

// member returns the raw value of key in the object data, or nil when the
// key is absent. A malformed object is an error.
func member(data []byte, key string) ([]byte, error) {
	var found []byte
	err := eachMember(data, func(k, v []byte) error {
		if string(k) == key {
			found = v
		}
		return nil
	})
	return found, err
}

// stringValue decodes a raw JSON string; ok is false for any other value.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	plain := true
	for _, c := range body {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(body), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
