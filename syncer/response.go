package syncer

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// Response is the body of a /sync answer (spec client-server-api
// sync.yaml). Every section is present, empty when nothing changed: the
// streams later issues fill (presence, to-device, device lists, …) keep
// the shape the spec gives.
type Response struct {
	NextBatch              string         `json:"next_batch"`
	Rooms                  RoomsSection   `json:"rooms"`
	Presence               EventList      `json:"presence"`
	AccountData            EventList      `json:"account_data"`
	ToDevice               EventList      `json:"to_device"`
	DeviceLists            DeviceLists    `json:"device_lists"`
	DeviceOneTimeKeysCount map[string]int `json:"device_one_time_keys_count"`
	// DeviceUnusedFallbackKeyTypes is always present: its presence tells
	// a client that the server supports fallback keys (spec: /sync).
	DeviceUnusedFallbackKeyTypes []string `json:"device_unused_fallback_key_types"`

	// empty is true when nothing but the position changed: a long-poll
	// keeps waiting.
	empty bool
	// held are streams a source delivered only part of (HoldPos).
	held map[Stream]int64
}

// HoldPos makes next_batch carry pos for stream s instead of the
// stream's current position: a source that delivered only part of its
// range (the to-device stream's per-sync limit) keeps the rest for the
// next sync.
func (r *Response) HoldPos(s Stream, pos int64) {
	if r.held == nil {
		r.held = map[Stream]int64{}
	}
	r.held[s] = pos
}

// RoomsSection holds the rooms by the syncing user's membership.
type RoomsSection struct {
	Join   map[id.RoomID]*JoinedRoom  `json:"join"`
	Invite map[id.RoomID]*InvitedRoom `json:"invite"`
	Leave  map[id.RoomID]*LeftRoom    `json:"leave"`
	Knock  map[id.RoomID]*KnockedRoom `json:"knock"`
}

// EventList is {"events": [...]}.
type EventList struct {
	Events []json.RawMessage `json:"events"`
}

// DeviceLists lists users whose devices changed (E2EE; a later issue).
type DeviceLists struct {
	Changed []id.UserID `json:"changed"`
	Left    []id.UserID `json:"left"`
}

// Timeline is a room's timeline section.
type Timeline struct {
	Events    []json.RawMessage `json:"events"`
	Limited   bool              `json:"limited"`
	PrevBatch string            `json:"prev_batch,omitempty"`
}

// RoomSummary is a joined room's summary (spec: m.heroes and the counts).
type RoomSummary struct {
	Heroes  []id.UserID `json:"m.heroes,omitempty"`
	Joined  *int        `json:"m.joined_member_count,omitempty"`
	Invited *int        `json:"m.invited_member_count,omitempty"`
}

// UnreadCounts is the unread_notifications slot (push rules fill it later).
type UnreadCounts struct {
	Highlight    int `json:"highlight_count"`
	Notification int `json:"notification_count"`
}

// JoinedRoom is one room of rooms.join.
type JoinedRoom struct {
	Summary             RoomSummary  `json:"summary"`
	State               EventList    `json:"state"`
	StateAfter          *EventList   `json:"state_after,omitempty"` // use_state_after; then State is left out
	Timeline            Timeline     `json:"timeline"`
	Ephemeral           EventList    `json:"ephemeral"`
	AccountData         EventList    `json:"account_data"`
	UnreadNotifications UnreadCounts `json:"unread_notifications"`
}

// InvitedRoom is one room of rooms.invite.
type InvitedRoom struct {
	InviteState EventList `json:"invite_state"`
}

// KnockedRoom is one room of rooms.knock.
type KnockedRoom struct {
	KnockState EventList `json:"knock_state"`
}

// LeftRoom is one room of rooms.leave.
type LeftRoom struct {
	State       EventList  `json:"state"`
	StateAfter  *EventList `json:"state_after,omitempty"` // use_state_after; then State is left out
	Timeline    Timeline   `json:"timeline"`
	AccountData EventList  `json:"account_data"`
}

func newResponse() *Response {
	return &Response{
		Rooms: RoomsSection{
			Join:   map[id.RoomID]*JoinedRoom{},
			Invite: map[id.RoomID]*InvitedRoom{},
			Leave:  map[id.RoomID]*LeftRoom{},
			Knock:  map[id.RoomID]*KnockedRoom{},
		},
		Presence:               EventList{Events: []json.RawMessage{}},
		AccountData:            EventList{Events: []json.RawMessage{}},
		ToDevice:               EventList{Events: []json.RawMessage{}},
		DeviceLists:            DeviceLists{Changed: []id.UserID{}, Left: []id.UserID{}},
		DeviceOneTimeKeysCount: map[string]int{},

		DeviceUnusedFallbackKeyTypes: []string{},
	}
}

func emptyList() EventList { return EventList{Events: []json.RawMessage{}} }
