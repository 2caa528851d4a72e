package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// RoomsPrefetcher is implemented by a Store that reads what a sync needs
// of many rooms in a few set-oriented queries. An initial sync of hundreds
// of rooms otherwise makes several round trips per room (issue #9: 500
// rooms were some 2,000 round trips, most of the second it took).
type RoomsPrefetcher interface {
	PrefetchRooms(ctx context.Context, req PrefetchRequest) (map[id.RoomID]*RoomPrefetch, error)
}

// PrefetchRequest asks for the same as RoomEventsBetween(room, 0, UpTo,
// Limit) and RoomSummary(room, User) of every room of Rooms.
type PrefetchRequest struct {
	Rooms []id.RoomID
	User  id.UserID
	UpTo  int64
	Limit int
}

// RoomPrefetch is what PrefetchRooms read of one room.
type RoomPrefetch struct {
	// Events and Limited are RoomEventsBetween(room, 0, UpTo, Limit);
	// HasEvents says they were read.
	Events    []*rooms.StoredEvent
	Limited   bool
	HasEvents bool
	// Summary is RoomSummary(room, User), when HasSummary.
	Summary    Summary
	HasSummary bool
	// ForkedFrom and Forked are ForkViewStore.ForkedFrom(room), read
	// after the events, when HasFork.
	ForkedFrom int64
	Forked     bool
	HasFork    bool

	// States are the room's fullStates as statesReq asked for them
	// (prefetchStates), read after the rest.
	States    *RoomStates
	statesReq RoomStatesRequest
}

// prefetchMin is the fewest rooms worth a prefetch: below it, the rooms'
// own queries (run six at a time) cost about the same.
const prefetchMin = 8

// prefetchRooms reads the timelines and summaries of the joined rooms an
// initial sync shows in one round trip, when the store can.
func (b *builder) prefetchRooms(ctx context.Context, plans []roomPlan) error {
	pf, ok := b.s.store.(RoomsPrefetcher)
	if !ok || !b.initial {
		return nil
	}
	var ids []id.RoomID
	for _, p := range plans {
		if p.full && p.membership.Membership == "join" {
			ids = append(ids, p.room)
		}
	}
	if len(ids) < prefetchMin {
		return nil
	}
	pre, err := pf.PrefetchRooms(ctx, PrefetchRequest{Rooms: ids, User: b.req.User, UpTo: b.pos, Limit: b.filter.TimelineLimit()})
	if err != nil {
		return err
	}
	b.pre = pre
	b.preAt = PrefetchRequest{UpTo: b.pos, Limit: b.filter.TimelineLimit()}
	return b.prefetchStates(ctx, ids)
}

// prefetchStates reads the state sections' fullStates of every prefetched
// room whose timeline the prefetch holds whole, in one round trip (issue
// #9: after the timelines and summaries, the state reads of each room —
// its current state, its history, their events and whether it forked —
// were what an initial sync of 500 rooms still waited on, 500 × 4 round
// trips). A room whose timeline filter needs older events than the
// prefetch read is left to its builder.
func (b *builder) prefetchStates(ctx context.Context, ids []id.RoomID) error {
	rs, ok := b.s.store.(RoomStatesReader)
	if !ok {
		return nil
	}
	tf := b.filter.TimelineFilter()
	limit := b.filter.TimelineLimit()
	reqs := make([]RoomStatesRequest, 0, len(ids))
	for _, room := range ids {
		p := b.pre[room]
		if p == nil || !p.HasEvents {
			continue
		}
		if p.Limited && tf != nil && len(p.Events) < MaxTimelineLimit {
			// fetchTimeline reads further back unless enough events of
			// this batch pass the filter.
			matched := 0
			for _, se := range p.Events {
				if tf.Matches(matchView(se)) {
					matched++
				}
			}
			if matched < limit {
				continue
			}
		}
		from := b.pos
		if len(p.Events) > 0 {
			from = min(p.Events[0].StreamPos-1, b.pos)
		}
		p.statesReq = b.fullStatesRequest(room, from, p.Events)
		reqs = append(reqs, p.statesReq)
	}
	if len(reqs) == 0 {
		return nil
	}
	got, err := rs.RoomStates(ctx, reqs)
	if err != nil {
		return err
	}
	for _, req := range reqs {
		st := got[req.Room]
		if st == nil {
			st = &RoomStates{}
		}
		b.pre[req.Room].States = st
	}
	return nil
}

// roomEventsBetween is the store's RoomEventsBetween, answered from the
// prefetch when it holds that very read.
func (b *builder) roomEventsBetween(ctx context.Context, room id.RoomID, after, upTo int64, limit int) ([]*rooms.StoredEvent, bool, error) {
	if p := b.pre[room]; p != nil && p.HasEvents && after == 0 && upTo == b.preAt.UpTo && limit == b.preAt.Limit {
		return p.Events, p.Limited, nil
	}
	return b.s.store.RoomEventsBetween(ctx, room, after, upTo, limit)
}

// roomSummary is the store's RoomSummary, from the prefetch when it has
// it.
func (b *builder) roomSummary(ctx context.Context, room id.RoomID) (Summary, error) {
	if p := b.pre[room]; p != nil && p.HasSummary {
		return p.Summary, nil
	}
	return b.s.store.RoomSummary(ctx, room, b.req.User)
}

// forkedFrom is the store's ForkedFrom, from the prefetch when it has it.
func (b *builder) forkedFrom(ctx context.Context, fv ForkViewStore, room id.RoomID) (int64, bool, error) {
	if p := b.pre[room]; p != nil && p.HasFork {
		return p.ForkedFrom, p.Forked, nil
	}
	return fv.ForkedFrom(ctx, room)
}
