package auth

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// CreatorLevel is the power level of a room creator in room version 12 and
// later: "infinitely high" (spec v12, authorisation rules). No power level
// an event can carry reaches it, since canonical JSON limits integers to
// ±(2^53−1).
const CreatorLevel int64 = math.MaxInt64

// The spec's defaults (m.room.power_levels, client-server API): they apply
// both when a key is missing and when the room has no power levels event.
const (
	defaultBan           = 50
	defaultKick          = 50
	defaultRedact        = 50
	defaultInvite        = 0
	defaultUsers         = 0
	defaultEvents        = 0
	defaultState         = 50
	defaultNotifications = 50
	// creatorLevelWithoutEvent is the creator's level in v1–11 rooms that
	// have no m.room.power_levels event.
	creatorLevelWithoutEvent = 100
)

// The seven integer properties at the top of the content, in one order used
// by parsing, change detection and encoding.
var plKeys = [...]string{"ban", "kick", "redact", "invite", "users_default", "events_default", "state_default"}

// PowerLevels is the parsed content of m.room.power_levels with the spec's
// defaults applied, plus what the room's create event says about creators.
// The zero value is not useful; use ParsePowerLevels or LoadPowerLevels.
type PowerLevels struct {
	Ban, Kick, Redact, Invite                 int64
	UsersDefault, EventsDefault, StateDefault int64
	Events                                    map[string]int64
	Notifications                             map[string]int64
	Users                                     map[id.UserID]int64

	present   [len(plKeys)]bool // which top-level integers the content has
	hasEvents bool
	hasNotifs bool
	hasUsers  bool
	noEvent   bool        // the room has no power levels event
	creators  []id.UserID // v12: sender and additional_creators of the create event
	infinite  bool        // creators have CreatorLevel (v12)
}

// PowerLevelsError says which property of a power levels content is
// malformed; the rules cite a different rule for each.
type PowerLevelsError struct {
	Property string // a top-level key, "events", "notifications" or "users"
	Reason   string
}

func (e *PowerLevelsError) Error() string {
	return "m.room.power_levels " + e.Property + ": " + e.Reason
}

func (p *PowerLevels) field(i int) *int64 {
	switch i {
	case 0:
		return &p.Ban
	case 1:
		return &p.Kick
	case 2:
		return &p.Redact
	case 3:
		return &p.Invite
	case 4:
		return &p.UsersDefault
	case 5:
		return &p.EventsDefault
	default:
		return &p.StateDefault
	}
}

// NoPowerLevels returns the levels of a room without a power levels event.
func NoPowerLevels() *PowerLevels {
	return &PowerLevels{
		Ban: defaultBan, Kick: defaultKick, Redact: defaultRedact, Invite: defaultInvite,
		UsersDefault: defaultUsers, EventsDefault: defaultEvents, StateDefault: defaultState,
		noEvent: true,
	}
}

// ParsePowerLevels parses a power levels content as room version rv allows
// it, validating it as the power levels rule does for a new event. From
// v10 every value must be a JSON integer (spec v10 rules 9.1–9.3). Before
// v10 only "users" is checked (rule "users is an object of valid user ids
// to integers"); other values that are not integers, strings holding
// integers or (v1–5) floats are treated as absent, as the rules of those
// versions do not reject them. A float outside int64 is always an error
// (v1-floaty-power-levels rejects values outside a double's range).
func ParsePowerLevels(rv roomversion.Version, content json.RawMessage) (*PowerLevels, error) {
	return parsePowerLevels(rv, content, false)
}

// parseStatePowerLevels reads a power levels event that is already part of
// the room's state. It only fails when the content is not an object: a
// value no rule would have let in (a server that validated less) is
// treated as absent rather than making every later event of the room fail.
func parseStatePowerLevels(rv roomversion.Version, content json.RawMessage) (*PowerLevels, error) {
	return parsePowerLevels(rv, content, true)
}

func parsePowerLevels(rv roomversion.Version, content json.RawMessage, lenient bool) (*PowerLevels, error) {
	p := NoPowerLevels()
	p.noEvent = false
	// fatal says whether a bad value rejects the whole content.
	fatal := func(err error) bool {
		return !lenient && (rv.IntegerPowerLevels || err == errLevelRange)
	}
	err := eachMember(content, func(key, value []byte) error {
		switch k := string(key); k {
		case "events", "notifications":
			m, err := parseLevelMap(rv, value, k, fatal)
			if err != nil {
				if !lenient && rv.IntegerPowerLevels {
					return err
				}
				return nil
			}
			if k == "events" {
				p.Events, p.hasEvents = m, true
			} else {
				p.Notifications, p.hasNotifs = m, true
			}
		case "users":
			users, err := parseUsers(rv, value, lenient)
			if err != nil {
				if lenient {
					return nil
				}
				return err
			}
			p.Users, p.hasUsers = users, true
		default:
			i := slices.Index(plKeys[:], k)
			if i < 0 {
				return nil
			}
			v, err := parseLevel(rv, value)
			if err != nil {
				if fatal(err) {
					return &PowerLevelsError{Property: k, Reason: err.Error()}
				}
				return nil
			}
			*p.field(i), p.present[i] = v, true
		}
		return nil
	})
	if err != nil {
		if _, ok := err.(*PowerLevelsError); ok {
			return nil, err
		}
		return nil, &PowerLevelsError{Property: "content", Reason: err.Error()}
	}
	return p, nil
}

func parseLevelMap(rv roomversion.Version, raw []byte, property string, fatal func(error) bool) (map[string]int64, error) {
	m := make(map[string]int64)
	err := eachMember(raw, func(key, value []byte) error {
		v, err := parseLevel(rv, value)
		if err != nil {
			if fatal(err) {
				return &PowerLevelsError{Property: property, Reason: string(key) + ": " + err.Error()}
			}
			return nil // ignored, see ParsePowerLevels
		}
		m[string(key)] = v
		return nil
	})
	if err != nil {
		if _, ok := err.(*PowerLevelsError); ok {
			return nil, err
		}
		return nil, &PowerLevelsError{Property: property, Reason: "not an object"}
	}
	return m, nil
}

func parseUsers(rv roomversion.Version, raw []byte, lenient bool) (map[id.UserID]int64, error) {
	m := make(map[id.UserID]int64)
	err := eachMember(raw, func(key, value []byte) error {
		u, err := id.ParseUserID(string(key))
		if err != nil {
			if lenient {
				return nil
			}
			return &PowerLevelsError{Property: "users", Reason: "key is not a valid user id"}
		}
		v, err := parseLevel(rv, value)
		if err != nil {
			if lenient {
				return nil
			}
			return &PowerLevelsError{Property: "users", Reason: string(u) + ": " + err.Error()}
		}
		m[u] = v
		return nil
	})
	if err != nil {
		if _, ok := err.(*PowerLevelsError); ok {
			return nil, err
		}
		return nil, &PowerLevelsError{Property: "users", Reason: "not an object"}
	}
	return m, nil
}

// LoadPowerLevels returns the power levels of the room state: its power
// levels event (or the defaults when there is none) and its creators from
// the create event. Parsing goes through the same cache as Check, so the
// Events, Notifications and Users maps of the result may be shared with
// other callers: treat them as read-only.
func LoadPowerLevels(rv roomversion.Version, state State) (*PowerLevels, error) {
	var p PowerLevels
	if ev := state.StateEvent(TypePowerLevels, ""); ev != nil {
		cached, err := cachedPowerLevels(rv, ev)
		if err != nil {
			return nil, err
		}
		p = *cached
	} else {
		p = *NoPowerLevels()
	}
	if create := state.StateEvent(TypeCreate, ""); create != nil {
		c, err := cachedCreate(rv, create)
		if err != nil {
			return nil, err
		}
		p.SetCreators(rv, c.creators)
	}
	return &p, nil
}

// SetCreators records the room's creators: in v12 they have CreatorLevel;
// before v12 the (single) creator has level 100 when the room has no power
// levels event.
func (p *PowerLevels) SetCreators(rv roomversion.Version, creators []id.UserID) {
	p.creators = creators
	p.infinite = rv.CreateEventDefinesRoomID
}

// IsCreator reports whether u is one of the creators SetCreators recorded.
func (p *PowerLevels) IsCreator(u id.UserID) bool { return slices.Contains(p.creators, u) }

// UserLevel is the power level of user u.
func (p *PowerLevels) UserLevel(u id.UserID) int64 {
	if p.infinite && p.IsCreator(u) {
		return CreatorLevel
	}
	if v, ok := p.Users[u]; ok {
		return v
	}
	if p.noEvent && !p.infinite && p.IsCreator(u) {
		return creatorLevelWithoutEvent
	}
	return p.UsersDefault
}

// EventLevel is the required power level to send an event of that type:
// its "events" entry, else state_default or events_default.
func (p *PowerLevels) EventLevel(eventType string, isState bool) int64 {
	if v, ok := p.Events[eventType]; ok {
		return v
	}
	if isState {
		return p.StateDefault
	}
	return p.EventsDefault
}

// NotificationLevel is the level needed to trigger the notification key
// (the spec defines "room", default 50).
func (p *PowerLevels) NotificationLevel(key string) int64 {
	if v, ok := p.Notifications[key]; ok {
		return v
	}
	return defaultNotifications
}

// Exists reports whether the levels come from a power levels event.
func (p *PowerLevels) Exists() bool { return !p.noEvent }

// MarshalJSON encodes the properties the parsed content had, as integers.
func (p *PowerLevels) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(plKeys)+3)
	for i, k := range plKeys {
		if p.present[i] {
			m[k] = *p.field(i)
		}
	}
	if p.hasEvents {
		m["events"] = p.Events
	}
	if p.hasNotifs {
		m["notifications"] = p.Notifications
	}
	if p.hasUsers {
		m["users"] = p.Users
	}
	return json.Marshal(m)
}
