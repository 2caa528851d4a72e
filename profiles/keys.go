package profiles

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/mxerr"
)

// The profile keys the spec defines (client-server API, "Profiles").
const (
	KeyDisplayName = "displayname"
	KeyAvatarURL   = "avatar_url"
	KeyTimeZone    = "m.tz"
)

// Limits of PUT /profile/{userId}/{keyName} (spec: profile.yaml): a key
// of at most 255 bytes (the Common Namespaced Identifier Grammar's limit)
// and a whole profile under 64 KiB.
const (
	MaxKeyBytes     = 255
	MaxProfileBytes = 64 * 1024
)

// Profile is a user's profile: field name to its JSON value.
type Profile map[string]json.RawMessage

// String returns the field's value when it is a JSON string, "" otherwise.
func (p Profile) String(key string) string {
	var s string
	if raw, ok := p[key]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// size is the profile's size as a JSON object.
func (p Profile) size() int {
	b, err := json.Marshal(map[string]json.RawMessage(p))
	if err != nil {
		return MaxProfileBytes + 1
	}
	return len(b)
}

// CheckKey validates a profile key name: displayname, avatar_url, m.tz or
// a custom key in the Common Namespaced Identifier Grammar (appendices)
// with a namespace (at least one dot, as profile.yaml's pattern demands).
// Other m.* keys are reserved for the spec.
func CheckKey(key string) error {
	if len(key) > MaxKeyBytes {
		return mxerr.KeyTooLarge
	}
	switch key {
	case KeyDisplayName, KeyAvatarURL, KeyTimeZone:
		return nil
	}
	if key == "" || key[0] < 'a' || key[0] > 'z' || !strings.Contains(key, ".") {
		return mxerr.InvalidParam.Msg("Invalid profile key: it must be displayname, avatar_url, m.tz or a namespaced identifier such as com.example.field")
	}
	for _, c := range []byte(key) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return mxerr.InvalidParam.Msg("Invalid profile key: only a-z, 0-9, '.', '_' and '-' are allowed")
		}
	}
	if strings.HasPrefix(key, "m.") {
		return mxerr.InvalidParam.Msgf("Invalid profile key: %s is reserved for the specification", key)
	}
	return nil
}

// checkValue validates a field's value by key (spec: profile.yaml,
// setProfileField's request body). An empty displayname or avatar_url
// clears the field, as clients have long done; it is reported by clear.
func checkValue(key string, value json.RawMessage) (clear bool, err error) {
	if !json.Valid(value) {
		return false, mxerr.BadJSON.Msg("The value is not valid JSON")
	}
	switch key {
	case KeyDisplayName, KeyAvatarURL, KeyTimeZone:
		var s string
		if err := json.Unmarshal(value, &s); err != nil || !bytes.HasPrefix(bytes.TrimSpace(value), []byte(`"`)) {
			return false, mxerr.BadJSON.Msgf("%s must be a string", key)
		}
		if s == "" && key != KeyTimeZone {
			return true, nil
		}
		if key == KeyAvatarURL && !strings.HasPrefix(s, "mxc://") {
			return false, mxerr.InvalidParam.Msg("avatar_url must be an mxc:// URI")
		}
	}
	return false, nil
}
