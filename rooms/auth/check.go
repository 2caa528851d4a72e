package auth

import (
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// ServerSigned is implemented by events that can say whether they carry a
// signature of a server. Parley's event type reports the signatures that
// passed verification on receipt; the rules need it for
// join_authorised_via_users_server (v8+ rule "the event is not validly
// signed by the homeserver of the user ID denoted by the key"). Events that
// do not implement it skip that rule: the signature layer enforces it.
type ServerSigned interface {
	SignedBy(server id.ServerName) bool
}

// Check applies the authorisation rules of room version rv to ev against
// state (the spec's rooms/v1 … rooms/v12 pages, "Authorisation rules"). It
// returns nil when ev is allowed and a *RuleError wrapping ErrNotAllowed
// naming the rule otherwise.
//
// The rules about the auth_events list itself are CheckAuthEvents'; Check
// reads only state, which may be the event's auth events, the state before
// it or the current state. It parses the power levels and the create event
// at most once per call and only when a rule needs them; parsed power
// levels and create events are also kept in a small cache keyed by the
// event and its exact content bytes (cache.go), since state resolution
// checks thousands of events against the same few.
func Check(rv roomversion.Version, ev Event, state State) error {
	c := checker{rv: rv, ev: ev, state: state, n: numberingFor(rv)}
	return c.check()
}

// checker holds one Check call's lazily parsed state.
type checker struct {
	rv       roomversion.Version
	ev       Event
	state    State
	n        numbering
	create   Event
	cc       *Create     // shared, read only
	creators []id.UserID // shared, read only
	pl       *PowerLevels
	plv      PowerLevels
}

func (c *checker) check() error {
	ev := c.ev
	if ev.Type() == TypeCreate {
		return c.checkCreate()
	}
	c.create = c.state.StateEvent(TypeCreate, "")
	if c.rv.CreateEventDefinesRoomID {
		// v12 rule 2: the room id is the create event's id with "!".
		room := string(ev.RoomID())
		if c.create == nil || len(room) < 2 || !sameOpaque(string(c.create.EventID()), room) {
			return deny("2", "room id is not the id of the room's create event")
		}
	} else if c.create == nil {
		return deny(sub(c.n.authEvents, 4), "no m.room.create event")
	}
	cc, err := c.parseCreate()
	if err != nil {
		return deny(c.n.federate, "the create event's content is malformed")
	}
	c.cc, c.creators = cc.c, cc.creators
	if !c.cc.Federate && ev.Sender().Server() != c.create.Sender().Server() {
		return deny(c.n.federate, "room is not federated and sender is from another server")
	}
	if c.rv.SpecialCaseAliases && ev.Type() == TypeAliases {
		sk := ev.StateKey()
		if sk == nil {
			return deny(sub(c.n.aliases, 1), "m.room.aliases has no state_key")
		}
		if string(ev.Sender().Server()) != *sk {
			return deny(sub(c.n.aliases, 2), "sender's domain does not match the state_key")
		}
		return nil
	}
	if ev.Type() == TypeMember {
		return c.checkMember()
	}
	if membershipOf(c.state, ev.Sender()) != Join {
		return deny(c.n.joined, "sender is not joined to the room")
	}
	pl, err := c.powerLevels()
	if err != nil {
		return err
	}
	senderLevel := pl.UserLevel(ev.Sender())
	if ev.Type() == TypeThirdPartyInvite {
		if senderLevel >= pl.Invite {
			return nil
		}
		return deny(sub(c.n.tpi, 1), "sender's power level is below the invite level")
	}
	sk := ev.StateKey()
	if pl.EventLevel(ev.Type(), sk != nil) > senderLevel {
		return denyf(c.n.required, "sender's power level is below the level required for %s", ev.Type())
	}
	if sk != nil && strings.HasPrefix(*sk, "@") && *sk != string(ev.Sender()) {
		return deny(c.n.stateKey, "state_key is a user id other than the sender")
	}
	if ev.Type() == TypePowerLevels {
		return c.checkPowerLevels(senderLevel)
	}
	if c.n.redaction != "" && ev.Type() == TypeRedaction {
		return c.checkRedactionV1(pl, senderLevel)
	}
	return nil
}

// powerLevels parses the state's power levels once per call.
func (c *checker) powerLevels() (*PowerLevels, error) {
	if c.pl != nil {
		return c.pl, nil
	}
	if ev := c.state.StateEvent(TypePowerLevels, ""); ev != nil {
		pl, err := cachedPowerLevels(c.rv, ev)
		if err != nil {
			return nil, deny(c.n.required, "the room's power levels are malformed: "+err.Error())
		}
		c.plv = *pl // a copy: the cached value is shared
	} else {
		c.plv = *NoPowerLevels()
	}
	c.plv.SetCreators(c.rv, c.creators)
	c.pl = &c.plv
	return c.pl, nil
}

// parsedCreate is a parsed create event with its creators list, as cached.
type parsedCreate struct {
	c        *Create
	creators []id.UserID
}

// parseCreate parses the state's create event, through the cache.
func (c *checker) parseCreate() (*parsedCreate, error) { return cachedCreate(c.rv, c.create) }

// checkCreate is rule 1.
func (c *checker) checkCreate() error {
	ev := c.ev
	if len(ev.PrevEventIDs()) > 0 {
		return deny("1.1", "m.room.create has prev_events")
	}
	if c.rv.CreateEventDefinesRoomID {
		if ev.RoomID() != "" {
			return deny("1.2", "m.room.create has a room_id")
		}
	} else if ev.RoomID().Server() != ev.Sender().Server() || ev.RoomID().Server() == "" {
		return deny("1.2", "room id's domain does not match the sender's")
	}
	content := ev.Content()
	var rawVersion, rawCreator, rawAdditional []byte
	err := eachMember(content, func(key, value []byte) error {
		switch string(key) {
		case "room_version":
			rawVersion = value
		case "creator":
			rawCreator = value
		case "additional_creators":
			rawAdditional = value
		}
		return nil
	})
	if err != nil {
		return deny("1.3", "content is not a JSON object")
	}
	if rawVersion != nil {
		s, ok := stringValue(rawVersion)
		if _, known := roomversion.Lookup(roomversion.ID(s)); !ok || !known {
			return deny("1.3", "content.room_version is not a recognised version")
		}
	}
	switch {
	case c.rv.CreateEventDefinesRoomID:
		if rawAdditional != nil {
			if _, err := parseAdditionalCreators(rawAdditional); err != nil {
				return deny("1.4", "additional_creators is not an array of valid user ids")
			}
		}
	case !c.rv.V11Semantics:
		if rawCreator == nil {
			return deny("1.4", "content has no creator")
		}
	}
	return nil
}

// checkRedactionV1 is rule 11 of room versions 1 and 2; later versions
// decide whether a redaction takes effect outside the rules
// (v3-handling-redactions).
func (c *checker) checkRedactionV1(pl *PowerLevels, senderLevel int64) error {
	if senderLevel >= pl.Redact {
		return nil
	}
	_, own, ok1 := strings.Cut(string(c.ev.EventID()), ":")
	_, target, ok2 := strings.Cut(string(c.ev.Redacts()), ":")
	if ok1 && ok2 && own == target {
		return nil
	}
	return deny(sub(c.n.redaction, 3), "sender may not redact events of another server")
}

// sameOpaque reports whether the event id $x and the room id !x share
// their opaque part (v12: the room id is the create event's id).
func sameOpaque(eventID, roomID string) bool {
	return len(eventID) == len(roomID) && eventID[0] == '$' && eventID[1:] == roomID[1:]
}
