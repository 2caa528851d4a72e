package syncer

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
)

// Event is one room event as the sync engine sees it: the fields filters
// and visibility look at, and the event in the client format.
type Event struct {
	ID        id.EventID
	RoomID    id.RoomID
	Type      string
	StateKey  *string // nil: not a state event
	Sender    id.UserID
	StreamPos int64 // global stream position (commit order)
	Seq       int64 // per-room sequence (timeline order)
	// Content is the event's content (contains_url looks into it).
	Content json.RawMessage
}

// IsState reports whether the event is a state event.
func (e *Event) IsState() bool { return e.StateKey != nil }

// Matches reports whether an event of type typ from sender passes f (spec
// definitions/event_filter.yaml): not_* lists win over the positive
// lists, an absent list does not restrict, types may use * wildcards.
// A nil filter lets everything through.
func (f *EventFilter) Matches(typ string, sender id.UserID) bool {
	if f == nil {
		return true
	}
	if slices.Contains(f.NotSenders, string(sender)) {
		return false
	}
	if f.Senders != nil && !slices.Contains(f.Senders, string(sender)) {
		return false
	}
	for _, pattern := range f.NotTypes {
		if globMatch(pattern, typ) {
			return false
		}
	}
	if f.Types == nil {
		return true
	}
	for _, pattern := range f.Types {
		if globMatch(pattern, typ) {
			return true
		}
	}
	return false
}

// Matches reports whether ev passes the room event filter: the event
// filter's conditions, the room lists and contains_url.
func (f *RoomEventFilter) Matches(ev *Event) bool {
	if f == nil {
		return true
	}
	if !f.EventFilter.Matches(ev.Type, ev.Sender) || !roomAllowed(f.Rooms, f.NotRooms, ev.RoomID) {
		return false
	}
	if f.ContainsURL != nil && contentHasURL(ev.Content) != *f.ContainsURL {
		return false
	}
	return true
}

// RoomAllowed reports whether the room filter's rooms/not_rooms let the
// room through; they apply before the per-section filters.
func (f *RoomFilter) RoomAllowed(room id.RoomID) bool {
	if f == nil {
		return true
	}
	return roomAllowed(f.Rooms, f.NotRooms, room)
}

func roomAllowed(rooms, notRooms []string, room id.RoomID) bool {
	if slices.Contains(notRooms, string(room)) {
		return false
	}
	return rooms == nil || slices.Contains(rooms, string(room))
}

// contentHasURL reports whether the event's content has a "url" key, of
// any value: the spec's contains_url looks at the key only.
func contentHasURL(raw json.RawMessage) bool {
	var content map[string]json.RawMessage
	if json.Unmarshal(raw, &content) != nil {
		return false
	}
	_, ok := content["url"]
	return ok
}

// globMatch matches s against pattern, where * stands for any sequence of
// characters (possibly empty) and every other character for itself.
func globMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// Filter* accessors: the section filters of a filter, nil when absent (a
// nil filter matches everything).

// TimelineFilter is the filter of the timeline section.
func (f *Filter) TimelineFilter() *RoomEventFilter {
	if f == nil || f.Room == nil {
		return nil
	}
	return f.Room.Timeline
}

// StateFilter is the filter of the state section.
func (f *Filter) StateFilter() *RoomEventFilter {
	if f == nil || f.Room == nil {
		return nil
	}
	return f.Room.State
}

// RoomFilterOf is the room filter, nil when absent.
func (f *Filter) RoomFilterOf() *RoomFilter {
	if f == nil {
		return nil
	}
	return f.Room
}
