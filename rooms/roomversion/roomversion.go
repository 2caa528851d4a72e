// Package roomversion describes every room version of the Matrix
// specification (v1.19: versions 1 to 12) as data: which event format,
// redaction rules, authorisation rules and state resolution algorithm each
// one uses. Code that behaves differently per room version asks the Version
// value, never compares version strings.
package roomversion

import "slices"

// ID is a room version identifier as it appears in m.room.create's
// room_version, for example "10".
type ID string

// EventFormat is the shape of events and event ids.
type EventFormat int

const (
	// FormatV1 events carry their own event_id ($opaque:server) and refer to
	// prev/auth events as [event_id, {hashes}] pairs (room versions 1–2).
	FormatV1 EventFormat = iota + 1
	// FormatV3 event ids are the reference hash in standard unpadded
	// base64, not carried in the event (room version 3).
	FormatV3
	// FormatV4 event ids are the reference hash in URL-safe unpadded base64
	// (room versions 4–12).
	FormatV4
)

// StateResAlgorithm is a state resolution algorithm.
type StateResAlgorithm int

const (
	// StateResV1 is the original algorithm (room version 1).
	StateResV1 StateResAlgorithm = iota + 1
	// StateResV2 is state resolution v2 (room versions 2–11).
	StateResV2
	// StateResV2_1 is v2 with the room version 12 changes: the full
	// conflicted set includes the conflicted state subgraph and iterative
	// auth checks start from empty state.
	StateResV2_1
)

// RedactionRules names the redaction algorithm variant.
type RedactionRules int

const (
	RedactionV1  RedactionRules = iota + 1 // room versions 1–5
	RedactionV6                            // 6–7: m.room.aliases no longer keeps "aliases"
	RedactionV8                            // 8: join_rules keep "allow"
	RedactionV9                            // 9–10: member keeps join_authorised_via_users_server
	RedactionV11                           // 11–12
)

// Version is everything that differs between room versions.
type Version struct {
	ID          ID
	Stable      bool
	EventFormat EventFormat
	StateRes    StateResAlgorithm
	Redaction   RedactionRules

	// StrictCanonicalJSON: integers must be in ±(2^53−1), no floats (v6+).
	StrictCanonicalJSON bool
	// EnforceKeyValidity: signing keys must be valid at origin_server_ts (v5+).
	EnforceKeyValidity bool
	// SpecialCaseAliases: m.room.aliases has its own auth rule (v1–5).
	SpecialCaseAliases bool
	// NotificationsPowerLevels: power-level changes check the
	// "notifications" map (v6+).
	NotificationsPowerLevels bool
	// Knocking: the "knock" membership and join rule exist (v7+).
	Knocking bool
	// RestrictedJoins: the "restricted" join rule and
	// join_authorised_via_users_server exist (v8+).
	RestrictedJoins bool
	// KnockRestricted: the "knock_restricted" join rule exists (v10+).
	KnockRestricted bool
	// IntegerPowerLevels: power level values must be JSON integers (v10+);
	// older versions tolerate strings and floats.
	IntegerPowerLevels bool
	// V11Semantics: no "creator" in m.room.create (the sender is the
	// creator), "redacts" in the content of m.room.redaction, no special
	// treatment of "origin" (v11+).
	V11Semantics bool
	// CreateEventDefinesRoomID: the room id is "!" + the create event's
	// reference hash, the create event has no room_id and is not listed in
	// auth_events, creators (sender and additional_creators) have unlimited
	// power (v12+).
	CreateEventDefinesRoomID bool
}

// Default is the room version the spec recommends servers use for new rooms.
const Default ID = "10"

var known = []Version{
	{ID: "1", Stable: true, EventFormat: FormatV1, StateRes: StateResV1, Redaction: RedactionV1, SpecialCaseAliases: true},
	{ID: "2", Stable: true, EventFormat: FormatV1, StateRes: StateResV2, Redaction: RedactionV1, SpecialCaseAliases: true},
	{ID: "3", Stable: true, EventFormat: FormatV3, StateRes: StateResV2, Redaction: RedactionV1, SpecialCaseAliases: true},
	{ID: "4", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV1, SpecialCaseAliases: true},
	{ID: "5", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV1, SpecialCaseAliases: true,
		EnforceKeyValidity: true},
	{ID: "6", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV6,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true},
	{ID: "7", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV6,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true},
	{ID: "8", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV8,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true,
		RestrictedJoins: true},
	{ID: "9", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV9,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true,
		RestrictedJoins: true},
	{ID: "10", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV9,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true,
		RestrictedJoins: true, KnockRestricted: true, IntegerPowerLevels: true},
	{ID: "11", Stable: true, EventFormat: FormatV4, StateRes: StateResV2, Redaction: RedactionV11,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true,
		RestrictedJoins: true, KnockRestricted: true, IntegerPowerLevels: true, V11Semantics: true},
	{ID: "12", Stable: true, EventFormat: FormatV4, StateRes: StateResV2_1, Redaction: RedactionV11,
		EnforceKeyValidity: true, StrictCanonicalJSON: true, NotificationsPowerLevels: true, Knocking: true,
		RestrictedJoins: true, KnockRestricted: true, IntegerPowerLevels: true, V11Semantics: true,
		CreateEventDefinesRoomID: true},
}

// Lookup returns the version with the given id.
func Lookup(id ID) (Version, bool) {
	for _, v := range known {
		if v.ID == id {
			return v, true
		}
	}
	return Version{}, false
}

// MustLookup returns a known version and panics on an unknown id; for tests
// and constants only.
func MustLookup(id ID) Version {
	v, ok := Lookup(id)
	if !ok {
		panic("roomversion: unknown room version " + string(id))
	}
	return v
}

// All returns every known version, oldest first.
func All() []Version { return slices.Clone(known) }
