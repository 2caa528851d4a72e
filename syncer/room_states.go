package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// RoomStatesReader is implemented by a StateHistoryStore that reads what a
// full state section needs (fullStates) of many rooms at once, and of a
// room's members only those a lazy-loading sync keeps. Without it a full
// section costs the whole current state (every member event, parsed, to be
// dropped by lazyMembers: issue #9, a room of 1,000 members read 1,000
// events for a handful) and three more round trips per room.
type RoomStatesReader interface {
	RoomStates(ctx context.Context, reqs []RoomStatesRequest) (map[id.RoomID]*RoomStates, error)
}

// RoomStatesRequest asks for one room's current state and the history of
// its resolved state after a position, as loadFullStates reads them.
type RoomStatesRequest struct {
	Room id.RoomID
	// After: the changes at stream positions above it (StateDeltas) and
	// the events they name (StateEvents).
	After int64
	// NoCurrent: the current state is not read (the room's m.room.create
	// is after After, so the history names every key).
	NoCurrent bool
	// Lazy: of the m.room.member keys, only those of Members are read, in
	// the current state and in the history alike; every other key whole.
	Lazy    bool
	Members []string
}

// RoomStates is what RoomStates read of one room: as StateBefore(room,
// past the latest event), restricted as the request asks (nil with
// NoCurrent), then StateDeltas(room, After) and StateEvents of their seqs.
// Current is read before the history, so a change committed in between is
// in the history.
type RoomStates struct {
	Current rooms.State
	Deltas  []StateDelta
	Events  map[int64]*rooms.StoredEvent
}

// fullStatesRequest is what loadFullStates reads of a room whose full
// sync fetched evs and starts its history at from. With lazy-loading, the
// member events kept are the user's own and those of the fetched events'
// senders (lazyMembers keeps those of the shown timeline's, a subset);
// the member keys the fetched events set are read too, so that the
// timeline's state events are checked against the state in force
// (cutAtUnresolved) exactly as with the whole state.
func (b *builder) fullStatesRequest(room id.RoomID, from int64, evs []*rooms.StoredEvent) RoomStatesRequest {
	req := RoomStatesRequest{Room: room, After: from, NoCurrent: hasCreate(evs)}
	if lazy, _ := b.filter.LazyLoadMembers(); !lazy {
		return req
	}
	req.Lazy = true
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			req.Members = append(req.Members, u)
		}
	}
	add(string(b.req.User))
	for _, se := range evs {
		ev := se.Event
		add(string(ev.Sender()))
		if ev.Type() == auth.TypeMember && ev.IsState() {
			add(*ev.StateKey())
		}
	}
	return req
}

// covers reports whether what was read for have answers want.
func (have RoomStatesRequest) covers(want RoomStatesRequest) bool {
	if have.Room != want.Room || have.After != want.After || have.NoCurrent != want.NoCurrent {
		return false
	}
	if !have.Lazy {
		return true
	}
	if !want.Lazy {
		return false
	}
	read := make(map[string]bool, len(have.Members))
	for _, u := range have.Members {
		read[u] = true
	}
	for _, u := range want.Members {
		if !read[u] {
			return false
		}
	}
	return true
}

// readFullStates reads a room's fullStates in one round trip (from the
// prefetch when it read them for this very section); ok is false when the
// store cannot, and loadFullStates reads them itself.
func (b *builder) readFullStates(ctx context.Context, room id.RoomID, from int64, evs []*rooms.StoredEvent) (fs *fullStates, ok bool, err error) {
	req := b.fullStatesRequest(room, from, evs)
	var st *RoomStates
	if p := b.pre[room]; p != nil && p.States != nil && p.statesReq.covers(req) {
		st = p.States
	} else {
		rs, can := b.s.store.(RoomStatesReader)
		if !can {
			return nil, false, nil
		}
		got, err := rs.RoomStates(ctx, []RoomStatesRequest{req})
		if err != nil {
			return nil, true, err
		}
		if st = got[room]; st == nil {
			st = &RoomStates{}
		}
	}
	fs = &fullStates{cur: st.Current, h: newStateHistory(from, st.Deltas), evs: st.Events}
	if fs.evs == nil {
		fs.evs = map[int64]*rooms.StoredEvent{}
	}
	return fs, true, nil
}
