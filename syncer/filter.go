package syncer

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/parleyhq/parley/mxerr"
)

// Filter is a filter definition (spec client-server-api "Filtering",
// definitions/sync_filter.yaml). Absent lists are nil, present ones (even
// empty) are not: the spec gives the two different meanings.
type Filter struct {
	EventFields []string     `json:"event_fields,omitempty"`
	EventFormat string       `json:"event_format,omitempty"`
	Presence    *EventFilter `json:"presence,omitempty"`
	AccountData *EventFilter `json:"account_data,omitempty"`
	Room        *RoomFilter  `json:"room,omitempty"`
}

// RoomFilter filters the rooms part of a sync.
type RoomFilter struct {
	Rooms        []string         `json:"rooms,omitzero"`
	NotRooms     []string         `json:"not_rooms,omitempty"`
	IncludeLeave bool             `json:"include_leave,omitempty"`
	Ephemeral    *RoomEventFilter `json:"ephemeral,omitempty"`
	State        *RoomEventFilter `json:"state,omitempty"`
	Timeline     *RoomEventFilter `json:"timeline,omitempty"`
	AccountData  *RoomEventFilter `json:"account_data,omitempty"`
}

// EventFilter is the basic filter of events by type and sender.
type EventFilter struct {
	Limit      *int     `json:"limit,omitempty"`
	Types      []string `json:"types,omitzero"`
	NotTypes   []string `json:"not_types,omitempty"`
	Senders    []string `json:"senders,omitzero"`
	NotSenders []string `json:"not_senders,omitempty"`
}

// RoomEventFilter is an EventFilter for room events, with room and URL
// conditions and the lazy-loading switches.
type RoomEventFilter struct {
	EventFilter
	Rooms                     []string `json:"rooms,omitzero"`
	NotRooms                  []string `json:"not_rooms,omitempty"`
	ContainsURL               *bool    `json:"contains_url,omitempty"`
	LazyLoadMembers           bool     `json:"lazy_load_members,omitempty"`
	IncludeRedundantMembers   bool     `json:"include_redundant_members,omitempty"`
	UnreadThreadNotifications bool     `json:"unread_thread_notifications,omitempty"`
}

// Limits of a filter: the default and the maximum number of timeline
// events per room (the spec leaves both to the server).
const (
	DefaultTimelineLimit = 10
	MaxTimelineLimit     = 1000
	maxFilterListLen     = 1000
)

// ParseFilter decodes and validates a filter definition, from the body of
// POST /user/{userId}/filter or the inline filter of /sync. It answers
// M_NOT_JSON for a body that is not JSON and M_BAD_JSON naming the field
// for a value of the wrong type or out of range.
func ParseFilter(raw []byte) (*Filter, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !json.Valid(raw) {
		return nil, mxerr.NotJSON.Msg("filter is not valid JSON")
	}
	if raw[0] != '{' {
		return nil, mxerr.BadJSON.Msg("filter must be a JSON object")
	}
	var f Filter
	if err := json.Unmarshal(raw, &f); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			// The embedded EventFilter shows in the path; clients know no such field.
			field := strings.ReplaceAll(typeErr.Field, ".EventFilter", "")
			return nil, mxerr.BadJSON.Msgf("filter field %q has the wrong type (JSON %s)", field, typeErr.Value)
		}
		return nil, mxerr.BadJSON.Msg("filter has a value of the wrong type")
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *Filter) validate() error {
	switch f.EventFormat {
	case "", "client", "federation":
	default:
		return badField("event_format", "must be \"client\" or \"federation\"")
	}
	if err := checkList("event_fields", f.EventFields, ""); err != nil {
		return err
	}
	for _, path := range f.EventFields {
		if path == "" {
			return badField("event_fields", "contains an empty path")
		}
	}
	if err := f.Presence.validate("presence"); err != nil {
		return err
	}
	if err := f.AccountData.validate("account_data"); err != nil {
		return err
	}
	if r := f.Room; r != nil {
		if err := checkList("room.rooms", r.Rooms, "!"); err != nil {
			return err
		}
		if err := checkList("room.not_rooms", r.NotRooms, "!"); err != nil {
			return err
		}
		for name, ef := range map[string]*RoomEventFilter{
			"room.ephemeral": r.Ephemeral, "room.state": r.State,
			"room.timeline": r.Timeline, "room.account_data": r.AccountData,
		} {
			if err := ef.validate(name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *EventFilter) validate(name string) error {
	if f == nil {
		return nil
	}
	if f.Limit != nil && (*f.Limit <= 0) {
		return badField(name+".limit", "must be an integer greater than 0")
	}
	for field, list := range map[string][]string{"types": f.Types, "not_types": f.NotTypes} {
		if err := checkList(name+"."+field, list, ""); err != nil {
			return err
		}
	}
	for field, list := range map[string][]string{"senders": f.Senders, "not_senders": f.NotSenders} {
		if err := checkList(name+"."+field, list, "@"); err != nil {
			return err
		}
	}
	return nil
}

func (f *RoomEventFilter) validate(name string) error {
	if f == nil {
		return nil
	}
	if err := f.EventFilter.validate(name); err != nil {
		return err
	}
	if err := checkList(name+".rooms", f.Rooms, "!"); err != nil {
		return err
	}
	return checkList(name+".not_rooms", f.NotRooms, "!")
}

// checkList bounds a list's length and checks the sigil of its entries.
func checkList(name string, list []string, sigil string) error {
	if len(list) > maxFilterListLen {
		return badField(name, "has too many entries")
	}
	if sigil == "" {
		return nil
	}
	for _, v := range list {
		if !strings.HasPrefix(v, sigil) {
			return badField(name, "entries must start with "+sigil)
		}
	}
	return nil
}

func badField(name, why string) error {
	return mxerr.BadJSON.Msgf("filter field %q %s", name, why)
}

// TimelineLimit is the number of timeline events per room the filter
// asks for, within the server's bounds.
func (f *Filter) TimelineLimit() int {
	if f == nil || f.Room == nil || f.Room.Timeline == nil || f.Room.Timeline.Limit == nil {
		return DefaultTimelineLimit
	}
	return min(*f.Room.Timeline.Limit, MaxTimelineLimit)
}

// IncludeLeave reports whether left rooms are part of the sync.
func (f *Filter) IncludeLeave() bool {
	return f != nil && f.Room != nil && f.Room.IncludeLeave
}

// LazyLoadMembers reports whether the state section carries only the
// members the timeline needs (spec "Lazy-loading room members"). The
// setting of the state filter decides, as the spec places it there.
func (f *Filter) LazyLoadMembers() (lazy, redundant bool) {
	if f == nil || f.Room == nil || f.Room.State == nil {
		return false, false
	}
	return f.Room.State.LazyLoadMembers, f.Room.State.IncludeRedundantMembers
}
