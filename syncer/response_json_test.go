package syncer

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
)

// The types the answer was encoded from by reflection before
// response_json.go, with the same tags: the reference it must match.
type (
	refResponse struct {
		NextBatch                    string         `json:"next_batch"`
		Rooms                        refRooms       `json:"rooms"`
		Presence                     EventList      `json:"presence"`
		AccountData                  EventList      `json:"account_data"`
		ToDevice                     EventList      `json:"to_device"`
		DeviceLists                  DeviceLists    `json:"device_lists"`
		DeviceOneTimeKeysCount       map[string]int `json:"device_one_time_keys_count"`
		DeviceUnusedFallbackKeyTypes []string       `json:"device_unused_fallback_key_types"`
	}
	refRooms struct {
		Join   map[id.RoomID]*refJoined   `json:"join"`
		Invite map[id.RoomID]*InvitedRoom `json:"invite"`
		Leave  map[id.RoomID]*refLeft     `json:"leave"`
		Knock  map[id.RoomID]*KnockedRoom `json:"knock"`
	}
	refJoined struct {
		Summary             RoomSummary  `json:"summary"`
		State               *EventList   `json:"state,omitempty"`
		StateAfter          *EventList   `json:"state_after,omitempty"`
		Timeline            Timeline     `json:"timeline"`
		Ephemeral           EventList    `json:"ephemeral"`
		AccountData         EventList    `json:"account_data"`
		UnreadNotifications UnreadCounts `json:"unread_notifications"`
	}
	refLeft struct {
		State       *EventList `json:"state,omitempty"`
		StateAfter  *EventList `json:"state_after,omitempty"`
		Timeline    Timeline   `json:"timeline"`
		AccountData EventList  `json:"account_data"`
	}
)

func refOf(r *Response) refResponse {
	out := refResponse{NextBatch: r.NextBatch, Presence: r.Presence, AccountData: r.AccountData, ToDevice: r.ToDevice,
		DeviceLists: r.DeviceLists, DeviceOneTimeKeysCount: r.DeviceOneTimeKeysCount,
		DeviceUnusedFallbackKeyTypes: r.DeviceUnusedFallbackKeyTypes,
		Rooms:                        refRooms{Invite: r.Rooms.Invite, Knock: r.Rooms.Knock}}
	if r.Rooms.Join != nil {
		out.Rooms.Join = map[id.RoomID]*refJoined{}
		for k, jr := range r.Rooms.Join {
			ref := &refJoined{Summary: jr.Summary, StateAfter: jr.StateAfter, Timeline: jr.Timeline,
				Ephemeral: jr.Ephemeral, AccountData: jr.AccountData, UnreadNotifications: jr.UnreadNotifications}
			if jr.StateAfter == nil {
				ref.State = &jr.State
			}
			out.Rooms.Join[k] = ref
		}
	}
	if r.Rooms.Leave != nil {
		out.Rooms.Leave = map[id.RoomID]*refLeft{}
		for k, lr := range r.Rooms.Leave {
			ref := &refLeft{StateAfter: lr.StateAfter, Timeline: lr.Timeline, AccountData: lr.AccountData}
			if lr.StateAfter == nil {
				ref.State = &lr.State
			}
			out.Rooms.Leave[k] = ref
		}
	}
	return out
}

// TestResponseJSONMatchesReflection: the hand-written encoding of a /sync
// answer is, byte for byte, what encoding/json wrote from the types'
// tags — empty and nil sections, summaries with and without counts,
// state_after, strings that need escaping, events with spaces and HTML
// characters (compacted and escaped by the caller's json.Marshal, as
// before).
func TestResponseJSONMatchesReflection(t *testing.T) {
	two, zero := 2, 0
	ev := func(s string) json.RawMessage { return json.RawMessage(s) }
	full := newResponse()
	full.NextBatch = "s1_2_3"
	full.Rooms.Join["!b:x"] = &JoinedRoom{
		Summary:   RoomSummary{Heroes: []id.UserID{"@a:x", "@b<&>:x"}, Joined: &two, Invited: &zero},
		State:     EventList{Events: []json.RawMessage{ev(`{"type":"m.room.member","content":{}}`)}},
		Timeline:  Timeline{Events: []json.RawMessage{ev(`{ "type" : "m.room.message", "content": {"body":"<b>é\u2028</b>"} }`)}, Limited: true, PrevBatch: "t9"},
		Ephemeral: emptyList(), AccountData: EventList{}, UnreadNotifications: UnreadCounts{Highlight: 1, Notification: 3},
	}
	full.Rooms.Join["!a:x"] = &JoinedRoom{Summary: RoomSummary{Heroes: []id.UserID{}}, StateAfter: &EventList{Events: []json.RawMessage{}}, Timeline: Timeline{Events: []json.RawMessage{}},
		Ephemeral: emptyList(), AccountData: emptyList()}
	full.Rooms.Invite["!i:x"] = &InvitedRoom{InviteState: EventList{Events: []json.RawMessage{ev(`{"type":"m.room.name"}`)}}}
	full.Rooms.Knock["!k:x"] = &KnockedRoom{}
	full.Rooms.Leave["!l:x"] = &LeftRoom{State: emptyList(), Timeline: Timeline{Events: []json.RawMessage{ev(`{}`)}}}
	full.Rooms.Leave["!m:x"] = &LeftRoom{StateAfter: &EventList{}, AccountData: emptyList()}
	full.Presence.Events = []json.RawMessage{ev(`{"type":"m.presence","sender":"@a:x"}`)}
	full.DeviceLists = DeviceLists{Changed: []id.UserID{"@c:x"}, Left: nil}
	full.DeviceOneTimeKeysCount = map[string]int{"signed_curve25519": 50, "curve25519": 0}
	full.DeviceUnusedFallbackKeyTypes = []string{"signed_curve25519"}

	bare := &Response{NextBatch: "line\nbreak \"quoted\" \\ \x01"}

	for name, r := range map[string]*Response{"empty": newResponse(), "full": full, "zero value": bare} {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(refOf(r))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("hand-written:\n%s\nreflection:\n%s", got, want)
			}
		})
	}
}
