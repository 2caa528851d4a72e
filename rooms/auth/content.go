package auth

import (
	"encoding/json"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// The event types the authorisation rules read or treat specially.
const (
	TypeCreate           = "m.room.create"
	TypeMember           = "m.room.member"
	TypeJoinRules        = "m.room.join_rules"
	TypePowerLevels      = "m.room.power_levels"
	TypeThirdPartyInvite = "m.room.third_party_invite"
	TypeAliases          = "m.room.aliases"
	TypeRedaction        = "m.room.redaction"
	TypeServerACL        = "m.room.server_acl"
)

// Create is the content of m.room.create with the fields later code needs.
type Create struct {
	// Creator is content.creator before v11 and the sender from v11 on
	// (spec v11: "creator" was removed; the sender is the creator).
	Creator id.UserID
	// AdditionalCreators is content.additional_creators (v12 and later).
	AdditionalCreators []id.UserID
	// RoomVersion is content.room_version; "1" when absent.
	RoomVersion roomversion.ID
	// Federate is content["m.federate"]; true unless it is literally false.
	Federate bool
	// Type is content.type, for example "m.space".
	Type        string
	Predecessor *Predecessor
}

// Predecessor is content.predecessor of m.room.create.
type Predecessor struct {
	RoomID  id.RoomID  `json:"room_id"`
	EventID id.EventID `json:"event_id,omitempty"`
}

// Creators returns the room creators: from v12 the sender plus
// additional_creators; before, the one creator.
func (c *Create) Creators() []id.UserID {
	out := make([]id.UserID, 0, 1+len(c.AdditionalCreators))
	out = append(out, c.Creator)
	return append(out, c.AdditionalCreators...)
}

var errNotObject = errors.New("content is not a JSON object")

// ParseCreate reads a create event. It is lenient about fields the
// authorisation rules validate elsewhere (rule 1), so that a create event
// already accepted always parses.
func ParseCreate(rv roomversion.Version, ev Event) (*Create, error) {
	c := &Create{RoomVersion: "1", Federate: true}
	err := eachMember(ev.Content(), func(key, value []byte) error {
		switch string(key) {
		case "creator":
			if !rv.V11Semantics {
				s, _ := stringValue(value)
				c.Creator = id.UserID(s)
			}
		case "room_version":
			if s, ok := stringValue(value); ok {
				c.RoomVersion = roomversion.ID(s)
			}
		case "m.federate":
			c.Federate = string(value) != "false"
		case "type":
			c.Type, _ = stringValue(value)
		case "predecessor":
			var p Predecessor
			if json.Unmarshal(value, &p) == nil {
				c.Predecessor = &p
			}
		case "additional_creators":
			if rv.CreateEventDefinesRoomID {
				c.AdditionalCreators, _ = parseAdditionalCreators(value)
			}
		}
		return nil
	})
	if err != nil {
		return nil, errNotObject
	}
	if rv.V11Semantics {
		c.Creator = ev.Sender()
	}
	return c, nil
}

// parseAdditionalCreators validates additional_creators (spec v12 rule 1.4:
// an array of strings that are valid user ids).
func parseAdditionalCreators(raw []byte) ([]id.UserID, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, errors.New("additional_creators is not an array")
	}
	out := make([]id.UserID, 0, len(list))
	for _, item := range list {
		s, ok := stringValue(item)
		if !ok {
			return nil, errors.New("additional_creators has a non-string entry")
		}
		u, err := id.ParseUserID(s)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// Membership is the membership of m.room.member.
type Membership string

const (
	Join   Membership = "join"
	Invite Membership = "invite"
	Leave  Membership = "leave"
	Ban    Membership = "ban"
	Knock  Membership = "knock"
)

// Member is the content of m.room.member as the rules read it.
type Member struct {
	Membership  Membership
	DisplayName string
	AvatarURL   string
	IsDirect    bool
	Reason      string
	// JoinAuthorisedViaUsersServer is set on restricted joins (v8+).
	JoinAuthorisedViaUsersServer id.UserID
	// HasJoinAuthorised says the key is present, whatever its value.
	HasJoinAuthorised bool
	// ThirdPartyInvite is the raw third_party_invite property, nil when
	// absent (presence matters, not only validity).
	ThirdPartyInvite json.RawMessage
}

var errNoMembership = errors.New("content has no membership")

// ParseMember reads an m.room.member content. A content without a string
// membership is an error (rule "no membership property in content").
func ParseMember(content json.RawMessage) (*Member, error) {
	m := &Member{}
	hasMembership := false
	err := eachMember(content, func(key, value []byte) error {
		switch string(key) {
		case "membership":
			s, ok := stringValue(value)
			m.Membership, hasMembership = Membership(s), ok
		case "displayname":
			m.DisplayName, _ = stringValue(value)
		case "avatar_url":
			m.AvatarURL, _ = stringValue(value)
		case "is_direct":
			m.IsDirect = string(value) == "true"
		case "reason":
			m.Reason, _ = stringValue(value)
		case "join_authorised_via_users_server":
			s, _ := stringValue(value)
			m.JoinAuthorisedViaUsersServer, m.HasJoinAuthorised = id.UserID(s), true
		case "third_party_invite":
			m.ThirdPartyInvite = json.RawMessage(value)
		}
		return nil
	})
	if err != nil {
		return nil, errNotObject
	}
	if !hasMembership {
		return nil, errNoMembership
	}
	return m, nil
}

// membershipOf returns the membership the state gives user u; "" when
// there is no member event (which the rules treat as leave).
func membershipOf(state State, u id.UserID) Membership {
	ev := state.StateEvent(TypeMember, string(u))
	if ev == nil {
		return ""
	}
	raw, err := member(ev.Content(), "membership")
	if err != nil {
		return ""
	}
	switch string(raw) { // the common values without allocating
	case `"join"`:
		return Join
	case `"leave"`:
		return Leave
	case `"invite"`:
		return Invite
	case `"ban"`:
		return Ban
	case `"knock"`:
		return Knock
	}
	s, _ := stringValue(raw)
	return Membership(s)
}

// JoinRule is the join_rule of m.room.join_rules.
type JoinRule string

const (
	JoinPublic          JoinRule = "public"
	JoinInvite          JoinRule = "invite"
	JoinKnock           JoinRule = "knock"
	JoinPrivate         JoinRule = "private"
	JoinRestricted      JoinRule = "restricted"
	JoinKnockRestricted JoinRule = "knock_restricted"
)

// JoinRules is the content of m.room.join_rules.
type JoinRules struct {
	JoinRule JoinRule    `json:"join_rule"`
	Allow    []AllowRule `json:"allow,omitempty"`
}

// AllowRule is one entry of a restricted room's allow list.
type AllowRule struct {
	Type   string    `json:"type"` // "m.room_membership"
	RoomID id.RoomID `json:"room_id,omitempty"`
}

// ParseJoinRules reads a join rules content. Allow entries that are not
// objects are skipped, as the spec tells servers to ignore what they do not
// understand there.
func ParseJoinRules(content json.RawMessage) (*JoinRules, error) {
	jr := &JoinRules{}
	err := eachMember(content, func(key, value []byte) error {
		switch string(key) {
		case "join_rule":
			s, _ := stringValue(value)
			jr.JoinRule = JoinRule(s)
		case "allow":
			var items []json.RawMessage
			if json.Unmarshal(value, &items) != nil {
				return nil
			}
			for _, item := range items {
				var a AllowRule
				if json.Unmarshal(item, &a) == nil && a.Type != "" {
					jr.Allow = append(jr.Allow, a)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, errNotObject
	}
	return jr, nil
}

// joinRuleOf returns the room's join rule. A room without a join rules
// event is treated as invite-only: the spec names no default, rooms created
// by the spec's own /createRoom always send one, and invite-only is the
// reading that keeps a room closed and agrees with deployed servers.
func joinRuleOf(state State) JoinRule {
	ev := state.StateEvent(TypeJoinRules, "")
	if ev == nil {
		return JoinInvite
	}
	raw, err := member(ev.Content(), "join_rule")
	if err != nil {
		return ""
	}
	s, _ := stringValue(raw)
	return JoinRule(s)
}
