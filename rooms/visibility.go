package rooms

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

const typeHistoryVisibility = "m.room.history_visibility"

// visibility answers "may this user see that event" for one user and room
// (client-server API, "History visibility"): the room's visibility as of
// the state before the event and the user's membership at the event.
//
// It reads the room's history_visibility events and the user's member
// events in sequence order. On one server every event is built on all
// forward extremities, so the room's history is linear and "the state at
// event N" is the latest state event with a lower sequence number; rooms
// with federated forks will need the events' state snapshots instead.
type visibility struct {
	hv      []*StoredEvent // history_visibility events, oldest first
	mine    []*StoredEvent // the user's member events, oldest first
	current string         // the user's current membership
}

func (s *Service) loadVisibility(ctx context.Context, room id.RoomID, user id.UserID, upTo int64) (*visibility, error) {
	hv, err := s.store.StateHistory(ctx, room, []string{typeHistoryVisibility}, nil, upTo)
	if err != nil {
		return nil, err
	}
	key := string(user)
	mine, err := s.store.StateHistory(ctx, room, []string{auth.TypeMember}, &key, upTo)
	if err != nil {
		return nil, err
	}
	v := &visibility{hv: hv, mine: mine}
	if n := len(mine); n > 0 {
		v.current = mine[n-1].Event.Membership()
	}
	return v, nil
}

// headVisibility reads the room's head and the user's visibility rules as
// of it, with the user's current membership taken from the head's state.
func (s *Service) headVisibility(ctx context.Context, room id.RoomID, user id.UserID) (*Head, *visibility, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return nil, nil, err
	}
	vis, err := s.loadVisibility(ctx, room, user, h.Seq)
	if err != nil {
		return nil, nil, err
	}
	vis.current = h.State.Membership(string(user))
	return h, vis, nil
}

// historyVisibility is the visibility in force for an event at seq: the
// state before it; "shared" when unset.
func (v *visibility) historyVisibility(seq int64) string {
	out := "shared"
	for _, e := range v.hv {
		if e.Seq >= seq {
			break
		}
		var c struct {
			HV string `json:"history_visibility"`
		}
		if json.Unmarshal(e.Event.Content(), &c) == nil && c.HV != "" {
			out = c.HV
		}
	}
	return out
}

// membershipAt is the user's membership once the event at seq is applied,
// so that a user sees their own join.
func (v *visibility) membershipAt(seq int64) string {
	out := ""
	for _, e := range v.mine {
		if e.Seq > seq {
			break
		}
		out = e.Event.Membership()
	}
	return out
}

// joinedSince reports whether the user joined at or after seq.
func (v *visibility) joinedSince(seq int64) bool {
	for _, e := range v.mine {
		if e.Seq >= seq && e.Event.Membership() == "join" {
			return true
		}
	}
	return false
}

// canSee applies the spec's rules in order.
func (v *visibility) canSee(seq int64) bool {
	hv := v.historyVisibility(seq)
	if hv == "world_readable" {
		return true
	}
	m := v.membershipAt(seq)
	if m == "join" {
		return true
	}
	if hv == "shared" && (v.joinedSince(seq) || v.current == "join") {
		return true
	}
	return hv == "invited" && m == "invite"
}

// worldReadable reports whether the room's visibility is world_readable now.
func (v *visibility) worldReadable() bool {
	return v.historyVisibility(1<<62) == "world_readable"
}

// filterVisible drops what the user may not see.
func (v *visibility) filterVisible(evs []*StoredEvent) []*StoredEvent {
	out := evs[:0:0]
	for _, e := range evs {
		if v.canSee(e.Seq) {
			out = append(out, e)
		}
	}
	return out
}
