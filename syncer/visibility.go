package syncer

import (
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

const typeHistoryVisibility = "m.room.history_visibility"

// historyVisibilityOf reads the visibility an m.room.history_visibility
// event sets; absent or not understood means "shared" (spec
// client-server-api "Room History Visibility", server behaviour).
func historyVisibilityOf(ev *event.Event) string {
	if ev == nil {
		return "shared"
	}
	var c struct {
		HV string `json:"history_visibility"`
	}
	_ = json.Unmarshal(ev.Content(), &c)
	switch c.HV {
	case "world_readable", "shared", "invited", "joined":
		return c.HV
	}
	return "shared"
}

// allowed applies the spec's rules 1–5 to one event: the visibility and
// the user's membership at the event, and whether the user joined the room
// at some point after it.
func allowed(hv, membership string, joinedLater bool) bool {
	switch {
	case hv == "world_readable", membership == "join":
		return true
	case hv == "shared" && joinedLater:
		return true
	}
	return hv == "invited" && membership == "invite"
}

// visibleFlags decides, for events of one room in timeline order, which
// ones user may see. before is the room state before evs[0];
// joinedAfter reports that the user is joined after the last event (then
// "shared" history is visible). The walk is one pass forward for the state
// at each event and one pass backward for "joined at a later point".
//
// The user's own membership events and history_visibility events are
// visible when the rules allow them with the state before or after the
// event, as the spec asks.
func visibleFlags(user id.UserID, before rooms.State, evs []*rooms.StoredEvent, joinedAfter bool) []bool {
	self := string(user)
	joinedLater := make([]bool, len(evs))
	later := joinedAfter
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i].Event
		if isOwnMember(ev, self) && ev.Membership() == "join" {
			later = true
		}
		joinedLater[i] = later
	}

	hv := historyVisibilityOf(before.Get(typeHistoryVisibility, ""))
	membership := before.Membership(self)
	out := make([]bool, len(evs))
	for i, se := range evs {
		ev := se.Event
		ok := allowed(hv, membership, joinedLater[i])
		switch {
		case isOwnMember(ev, self):
			after := ev.Membership()
			ok = ok || allowed(hv, after, joinedLater[i])
			membership = after
		case ev.Type() == typeHistoryVisibility && ev.StateKey() != nil && *ev.StateKey() == "":
			next := historyVisibilityOf(ev)
			ok = ok || allowed(next, membership, joinedLater[i])
			hv = next
		}
		out[i] = ok
	}
	return out
}

func isOwnMember(ev *event.Event, user string) bool {
	return ev.Type() == auth.TypeMember && ev.StateKey() != nil && *ev.StateKey() == user
}
