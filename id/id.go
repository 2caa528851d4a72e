// Package id holds Matrix's typed identifiers (user, room, event, alias, server
// name, device) and the grammar that validates them (spec appendices,
// "Identifier Grammar"). It imports nothing of Parley's and no driver: every
// other package may use it.
package id

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLength is the longest identifier the spec allows, in bytes, sigil and
// server name included.
const MaxLength = 255

var (
	// ErrInvalid is wrapped by every parse error of this package.
	ErrInvalid = errors.New("invalid identifier")
)

func invalid(kind, value, why string) error {
	return fmt.Errorf("%w: %s %q: %s", ErrInvalid, kind, value, why)
}

// UserID is a Matrix user id: @localpart:server_name.
type UserID string

// RoomID is a Matrix room id: !opaque:server_name, or !opaque for room
// version 12 and later, where the id is derived from the create event.
type RoomID string

// EventID is a Matrix event id: $opaque:server_name for room versions 1 and 2,
// $hash for later versions.
type EventID string

// RoomAlias is a room alias: #localpart:server_name.
type RoomAlias string

// DeviceID identifies one device (one login) of a user. Its grammar is opaque.
type DeviceID string

func (u UserID) String() string    { return string(u) }
func (r RoomID) String() string    { return string(r) }
func (e EventID) String() string   { return string(e) }
func (a RoomAlias) String() string { return string(a) }
func (d DeviceID) String() string  { return string(d) }

// NewUserID builds a user id from a localpart and a server name without
// validating it; use ParseUserID on anything that came from outside.
func NewUserID(localpart string, server ServerName) UserID {
	return UserID("@" + localpart + ":" + string(server))
}

// ParseUserID validates s as a user id. It accepts the historical localpart
// grammar (any printable ASCII but ':'), as the spec requires servers to do
// for ids that already exist; new registrations are checked with
// ValidNewLocalpart.
func ParseUserID(s string) (UserID, error) {
	local, server, err := splitSigil(s, '@', "user id")
	if err != nil {
		return "", err
	}
	if local == "" {
		return "", invalid("user id", s, "empty localpart")
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c < 0x21 || c > 0x7e || c == ':' {
			return "", invalid("user id", s, "localpart has a forbidden character")
		}
	}
	if _, err := ParseServerName(server); err != nil {
		return "", invalid("user id", s, err.Error())
	}
	return UserID(s), nil
}

// Localpart returns the part between '@' and the first ':'.
func (u UserID) Localpart() string {
	s := strings.TrimPrefix(string(u), "@")
	local, _, _ := strings.Cut(s, ":")
	return local
}

// Server returns the server name of the user id.
func (u UserID) Server() ServerName {
	_, server, _ := strings.Cut(string(u), ":")
	return ServerName(server)
}

// ValidNewLocalpart reports whether localpart may be used for a new account:
// the spec's current grammar, lower-case letters, digits and ._=-/+ only.
func ValidNewLocalpart(localpart string) bool {
	if localpart == "" {
		return false
	}
	for i := 0; i < len(localpart); i++ {
		c := localpart[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("._=-/+", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseRoomID validates s as a room id. The server name part is optional
// because room version 12 ids have none.
func ParseRoomID(s string) (RoomID, error) {
	if err := parseOpaque(s, '!', "room id"); err != nil {
		return "", err
	}
	return RoomID(s), nil
}

// Server returns the server name part of a pre-v12 room id, or "" for a room
// id that has none.
func (r RoomID) Server() ServerName {
	_, server, _ := strings.Cut(string(r), ":")
	return ServerName(server)
}

// ParseEventID validates s as an event id of any room version.
func ParseEventID(s string) (EventID, error) {
	if err := parseOpaque(s, '$', "event id"); err != nil {
		return "", err
	}
	return EventID(s), nil
}

// ParseRoomAlias validates s as a room alias.
func ParseRoomAlias(s string) (RoomAlias, error) {
	local, server, err := splitSigil(s, '#', "room alias")
	if err != nil {
		return "", err
	}
	if local == "" {
		return "", invalid("room alias", s, "empty localpart")
	}
	if _, err := ParseServerName(server); err != nil {
		return "", invalid("room alias", s, err.Error())
	}
	return RoomAlias(s), nil
}

// Localpart returns the part between '#' and the first ':'.
func (a RoomAlias) Localpart() string {
	s := strings.TrimPrefix(string(a), "#")
	local, _, _ := strings.Cut(s, ":")
	return local
}

// Server returns the server name of the alias.
func (a RoomAlias) Server() ServerName {
	_, server, _ := strings.Cut(string(a), ":")
	return ServerName(server)
}

// splitSigil checks the sigil and the length and splits at the first ':'.
func splitSigil(s string, sigil byte, kind string) (local, server string, err error) {
	if len(s) > MaxLength {
		return "", "", invalid(kind, s, "longer than 255 bytes")
	}
	if len(s) == 0 || s[0] != sigil {
		return "", "", invalid(kind, s, fmt.Sprintf("must start with %q", sigil))
	}
	local, server, ok := strings.Cut(s[1:], ":")
	if !ok {
		return "", "", invalid(kind, s, "missing server name")
	}
	return local, server, nil
}

// parseOpaque checks an identifier whose localpart is opaque and whose server
// name, when present, must be valid.
func parseOpaque(s string, sigil byte, kind string) error {
	if len(s) > MaxLength {
		return invalid(kind, s, "longer than 255 bytes")
	}
	if len(s) < 2 || s[0] != sigil {
		return invalid(kind, s, fmt.Sprintf("must start with %q and not be empty", sigil))
	}
	// The localpart may hold any non-surrogate code point but NUL (spec
	// appendices, "Room IDs"); ':' ends it.
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return invalid(kind, s, "is not valid UTF-8 or contains NUL")
	}
	if _, server, ok := strings.Cut(s[1:], ":"); ok {
		if _, err := ParseServerName(server); err != nil {
			return invalid(kind, s, err.Error())
		}
	}
	return nil
}
