package syncer

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/parleyhq/parley/id"
)

// The /sync answer's JSON, written by hand (issue #9). In a fan-out to
// 500 members every member's answer was encoded by encoding/json's
// reflection, and each nested json.Marshaler (the rooms, every rendered
// event) had its output compacted again by each level above it: the
// encoding was the largest part of a member sync's CPU after the database
// round trips were gone. These methods append the same fields in the same
// order; the caller's json.Marshal compacts the result once.
// TestResponseJSONMatchesReflection holds them to what reflection writes.

// MarshalJSON implements json.Marshaler.
func (r *Response) MarshalJSON() ([]byte, error) {
	var a jsonAppender
	a.b = make([]byte, 0, 1024+r.rawSize())
	a.raw(`{"next_batch":`)
	a.str(r.NextBatch)
	a.raw(`,"rooms":`)
	a.rooms(&r.Rooms)
	a.raw(`,"presence":`)
	a.eventList(r.Presence)
	a.raw(`,"account_data":`)
	a.eventList(r.AccountData)
	a.raw(`,"to_device":`)
	a.eventList(r.ToDevice)
	a.raw(`,"device_lists":{"changed":`)
	a.userIDs(r.DeviceLists.Changed)
	a.raw(`,"left":`)
	a.userIDs(r.DeviceLists.Left)
	a.raw(`},"device_one_time_keys_count":`)
	a.counts(r.DeviceOneTimeKeysCount)
	a.raw(`,"device_unused_fallback_key_types":`)
	a.strs(r.DeviceUnusedFallbackKeyTypes)
	a.raw(`}`)
	return a.b, nil
}

// MarshalJSON implements json.Marshaler: with state_after set, "state" is
// left out — a client that asked for use_state_after gets one of the two
// only (spec GET /sync, use_state_after).
func (r *JoinedRoom) MarshalJSON() ([]byte, error) {
	var a jsonAppender
	a.joinedRoom(r)
	return a.b, nil
}

// MarshalJSON implements json.Marshaler, as JoinedRoom's.
func (r *LeftRoom) MarshalJSON() ([]byte, error) {
	var a jsonAppender
	a.leftRoom(r)
	return a.b, nil
}

// rawSize is the size of the events the answer carries, to size the
// buffer once.
func (r *Response) rawSize() int {
	n := 0
	add := func(l EventList) {
		for _, e := range l.Events {
			n += len(e) + 1
		}
	}
	for _, jr := range r.Rooms.Join {
		add(jr.State)
		add(EventList{Events: jr.Timeline.Events})
		add(jr.Ephemeral)
		add(jr.AccountData)
		if jr.StateAfter != nil {
			add(*jr.StateAfter)
		}
	}
	add(r.Presence)
	add(r.AccountData)
	add(r.ToDevice)
	return n
}

// jsonAppender appends JSON to b.
type jsonAppender struct{ b []byte }

func (a *jsonAppender) raw(s string) { a.b = append(a.b, s...) }

// str appends s as a JSON string: as it is when it needs no escaping,
// else as encoding/json writes it.
func (a *jsonAppender) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			a.b = append(a.b, enc...)
			return
		}
	}
	a.b = append(a.b, '"')
	a.b = append(a.b, s...)
	a.b = append(a.b, '"')
}

func (a *jsonAppender) int(n int64) { a.b = strconv.AppendInt(a.b, n, 10) }

func (a *jsonAppender) bool(v bool) { a.b = strconv.AppendBool(a.b, v) }

// rawEvents appends events, each as it was rendered (nil: null).
func (a *jsonAppender) rawEvents(evs []json.RawMessage) {
	jsonList(a, evs, func(e json.RawMessage) {
		if len(e) == 0 {
			a.raw(`null`)
			return
		}
		a.b = append(a.b, e...)
	})
}

func (a *jsonAppender) eventList(l EventList) {
	a.raw(`{"events":`)
	a.rawEvents(l.Events)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) userIDs(us []id.UserID) {
	jsonList(a, us, func(u id.UserID) { a.str(string(u)) })
}

func (a *jsonAppender) strs(ss []string) { jsonList(a, ss, a.str) }

// counts appends a map[string]int with its keys sorted, as encoding/json.
func (a *jsonAppender) counts(m map[string]int) {
	sortedObject(a, m, func(n int) { a.int(int64(n)) })
}

// jsonList appends items as a JSON array (nil: null), each by item.
func jsonList[T any](a *jsonAppender, items []T, item func(T)) {
	if items == nil {
		a.raw(`null`)
		return
	}
	a.b = append(a.b, '[')
	for i, it := range items {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		item(it)
	}
	a.b = append(a.b, ']')
}

// sortedObject appends m as a JSON object with its keys sorted, as
// encoding/json (nil: null), each value by value.
func sortedObject[K ~string, V any](a *jsonAppender, m map[K]V, value func(V)) {
	if m == nil {
		a.raw(`null`)
		return
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	a.b = append(a.b, '{')
	for i, k := range keys {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		a.str(string(k))
		a.b = append(a.b, ':')
		value(m[k])
	}
	a.b = append(a.b, '}')
}

// roomMap appends a map of rooms with its keys sorted, as encoding/json,
// each value by one.
func roomMap[R any](a *jsonAppender, m map[id.RoomID]*R, one func(*R)) {
	sortedObject(a, m, func(v *R) {
		if v == nil {
			a.raw(`null`)
			return
		}
		one(v)
	})
}

func (a *jsonAppender) rooms(rs *RoomsSection) {
	a.raw(`{"join":`)
	roomMap(a, rs.Join, a.joinedRoom)
	a.raw(`,"invite":`)
	roomMap(a, rs.Invite, func(r *InvitedRoom) {
		a.raw(`{"invite_state":`)
		a.eventList(r.InviteState)
		a.b = append(a.b, '}')
	})
	a.raw(`,"leave":`)
	roomMap(a, rs.Leave, a.leftRoom)
	a.raw(`,"knock":`)
	roomMap(a, rs.Knock, func(r *KnockedRoom) {
		a.raw(`{"knock_state":`)
		a.eventList(r.KnockState)
		a.b = append(a.b, '}')
	})
	a.b = append(a.b, '}')
}

func (a *jsonAppender) joinedRoom(r *JoinedRoom) {
	a.raw(`{"summary":`)
	a.summary(&r.Summary)
	if r.StateAfter == nil {
		a.raw(`,"state":`)
		a.eventList(r.State)
	} else {
		a.raw(`,"state_after":`)
		a.eventList(*r.StateAfter)
	}
	a.raw(`,"timeline":`)
	a.timeline(&r.Timeline)
	a.raw(`,"ephemeral":`)
	a.eventList(r.Ephemeral)
	a.raw(`,"account_data":`)
	a.eventList(r.AccountData)
	a.raw(`,"unread_notifications":{"highlight_count":`)
	a.int(int64(r.UnreadNotifications.Highlight))
	a.raw(`,"notification_count":`)
	a.int(int64(r.UnreadNotifications.Notification))
	a.raw(`}}`)
}

func (a *jsonAppender) leftRoom(r *LeftRoom) {
	if r.StateAfter == nil {
		a.raw(`{"state":`)
		a.eventList(r.State)
	} else {
		a.raw(`{"state_after":`)
		a.eventList(*r.StateAfter)
	}
	a.raw(`,"timeline":`)
	a.timeline(&r.Timeline)
	a.raw(`,"account_data":`)
	a.eventList(r.AccountData)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) summary(s *RoomSummary) {
	a.b = append(a.b, '{')
	sep := false
	field := func(name string) {
		if sep {
			a.b = append(a.b, ',')
		}
		sep = true
		a.raw(name)
	}
	if len(s.Heroes) > 0 {
		field(`"m.heroes":`)
		a.userIDs(s.Heroes)
	}
	if s.Joined != nil {
		field(`"m.joined_member_count":`)
		a.int(int64(*s.Joined))
	}
	if s.Invited != nil {
		field(`"m.invited_member_count":`)
		a.int(int64(*s.Invited))
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) timeline(t *Timeline) {
	a.raw(`{"events":`)
	a.rawEvents(t.Events)
	a.raw(`,"limited":`)
	a.bool(t.Limited)
	if t.PrevBatch != "" {
		a.raw(`,"prev_batch":`)
		a.str(t.PrevBatch)
	}
	a.b = append(a.b, '}')
}
