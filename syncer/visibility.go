package syncer

import (
	"context"
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
	return normalHistoryVisibility(c.HV)
}

// normalHistoryVisibility reads "" and values not understood as "shared".
func normalHistoryVisibility(hv string) string {
	switch hv {
	case "world_readable", "shared", "invited", "joined":
		return hv
	}
	return "shared"
}

// ForkViewStore reads the state before events from their snapshots in
// rooms whose graph forked (rooms.ForkViews; storage implements both). A
// Store that does not implement it gets the linear walk of visibleFlags.
type ForkViewStore interface {
	ForkedFrom(ctx context.Context, room id.RoomID) (seq int64, forked bool, err error)
	UserViews(ctx context.Context, room id.RoomID, user id.UserID, from, to int64) (map[int64]rooms.UserView, error)
}

// forkViews reads the views of evs when the room forked at or before them
// (nil otherwise: the linear walk is right, and costs one small query).
func (b *builder) forkViews(ctx context.Context, room id.RoomID, evs []*rooms.StoredEvent) (map[int64]rooms.UserView, error) {
	fv, ok := b.s.store.(ForkViewStore)
	if !ok || len(evs) == 0 {
		return nil, nil
	}
	first, forked, err := b.forkedFrom(ctx, fv, room)
	if err != nil || !forked {
		return nil, err
	}
	lo, hi := evs[0].Seq, evs[0].Seq
	for _, se := range evs {
		lo, hi = min(lo, se.Seq), max(hi, se.Seq)
	}
	if hi < first {
		return nil, nil
	}
	return fv.UserViews(ctx, room, b.req.User, max(lo, first), hi)
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
//
// views, when not nil, are the states before events of a room whose graph
// forked, read from their snapshots (ForkViewStore): an event built on a
// branch is judged by its branch's state, not by the events before it in
// the stream (spec: the visibility "at the event").
func visibleFlags(user id.UserID, before rooms.State, evs []*rooms.StoredEvent, joinedAfter bool, views map[int64]rooms.UserView) []bool {
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
		if view, ok := views[se.Seq]; ok {
			hv, membership = normalHistoryVisibility(view.HistoryVisibility), view.Membership
		}
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

// visibleToMember is the rule for a user joined now, so "joined later"
// holds: an event is hidden only when the state before it (its view, when
// the room forked) makes the history "joined" or "invited" and the user's
// membership there (or the one their own member event sets) does not
// allow it.
func visibleToMember(user id.UserID, se *rooms.StoredEvent, views map[int64]rooms.UserView) bool {
	view, ok := views[se.Seq]
	if !ok {
		return true
	}
	m := view.Membership
	if isOwnMember(se.Event, string(user)) {
		m = se.Event.Membership()
	}
	return allowed(normalHistoryVisibility(view.HistoryVisibility), m, true) || allowed(normalHistoryVisibility(view.HistoryVisibility), view.Membership, true)
}

func isOwnMember(ev *event.Event, user string) bool {
	return ev.Type() == auth.TypeMember && ev.StateKey() != nil && *ev.StateKey() == user
}
