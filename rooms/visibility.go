package rooms

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

const typeHistoryVisibility = "m.room.history_visibility"

// UserView is what the history visibility rules read of the state before
// an event for one user: the room's history visibility ("" when unset)
// and the user's membership ("" when none).
type UserView struct {
	HistoryVisibility string
	Membership        string
}

// ForkViews reads the state before events from their snapshots, for
// rooms whose graph forked (sql/0016). A store that does not implement it
// gets the linear reading of visibility below.
type ForkViews interface {
	// ForkedFrom returns the lowest sequence number from which the room's
	// events may have been built on a fork; forked is false for a room
	// whose history is linear.
	ForkedFrom(ctx context.Context, room id.RoomID) (seq int64, forked bool, err error)
	// UserViews returns user's view of the state before each of the
	// room's events with a sequence number in [from, to] whose state is
	// known, by sequence number.
	UserViews(ctx context.Context, room id.RoomID, user id.UserID, from, to int64) (map[int64]UserView, error)
}

// viewBatch is how many sequence numbers around an event one read of
// views covers: a page of /messages reads one or two batches, not one
// snapshot per event.
const viewBatch = 200

// visibility answers "may this user see that event" for one user and room
// (client-server API, "History visibility"): the room's visibility as of
// the state before the event and the user's membership at the event.
//
// It reads the room's history_visibility events and the user's member
// events in sequence order. While a room's history is linear (every event
// built on all forward extremities, as on one server), "the state at event
// N" is the latest state event with a lower sequence number: that reading
// costs two index scans. From the first event a fork may have touched on
// (ForkViews.ForkedFrom), an event built on a branch has the state of its
// branch, and resolution may keep an older event than the latest: the
// rules then read the event's own snapshot (UserViews, in batches).
type visibility struct {
	hv      []*StoredEvent // history_visibility events, oldest first
	mine    []*StoredEvent // the user's member events, oldest first
	current string         // the user's current membership

	// forked: the room forked at forkedFrom; views are the snapshots read
	// so far (loaded: the ranges read). ctx is the request's: canSee is
	// called event by event from loops that have none to pass, and the
	// object lives for one request.
	forked     bool
	forkedFrom int64
	fv         ForkViews
	ctx        context.Context
	room       id.RoomID
	user       id.UserID
	views      map[int64]UserView
	loaded     [][2]int64
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
	if fv, ok := s.store.(ForkViews); ok {
		first, forked, err := fv.ForkedFrom(ctx, room)
		if err != nil {
			return nil, err
		}
		if forked {
			v.forked, v.forkedFrom, v.fv = true, first, fv
			v.ctx, v.room, v.user = ctx, room, user
			v.views = map[int64]UserView{}
		}
	}
	return v, nil
}

// viewAt is the view of the state before the event at seq from its
// snapshot, read with its neighbours on first need; ok is false when the
// room did not fork by then, the state is not known (outliers, history
// backfilled from other servers) or it could not be read — then the
// linear reading stands.
func (v *visibility) viewAt(seq int64) (UserView, bool) {
	if !v.forked || seq < v.forkedFrom {
		return UserView{}, false
	}
	if view, ok := v.views[seq]; ok {
		return view, true
	}
	for _, r := range v.loaded {
		if seq >= r[0] && seq <= r[1] {
			return UserView{}, false
		}
	}
	from, to := max(seq-viewBatch, v.forkedFrom), seq+viewBatch
	views, err := v.fv.UserViews(v.ctx, v.room, v.user, from, to)
	if err != nil {
		return UserView{}, false
	}
	v.loaded = append(v.loaded, [2]int64{from, to})
	maps.Copy(v.views, views)
	view, ok := v.views[seq]
	return view, ok
}

// ownMembershipAt is the membership the user's own member event at seq
// sets, if the event at seq is one.
func (v *visibility) ownMembershipAt(seq int64) (string, bool) {
	i, found := slices.BinarySearchFunc(v.mine, seq, func(e *StoredEvent, s int64) int { return cmp.Compare(e.Seq, s) })
	if !found {
		return "", false
	}
	return v.mine[i].Event.Membership(), true
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
	m := ""
	if view, ok := v.viewAt(seq); ok {
		hv = view.HistoryVisibility
		switch hv {
		case "world_readable", "shared", "invited", "joined":
		default:
			hv = "shared" // unset or not understood (spec: as shared)
		}
		// The membership once the event applies, so that a user sees
		// their own join.
		m = view.Membership
		if own, ok := v.ownMembershipAt(seq); ok {
			m = own
		}
	} else {
		m = v.membershipAt(seq)
	}
	if hv == "world_readable" {
		return true
	}
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
