package rooms

import (
	"cmp"
	"container/heap"
	"context"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
)

const (
	// maxBackfill caps a /backfill answer; the requester asks again from
	// the oldest events it got.
	maxBackfill = 100
	// defaultMissing and maxMissing are /get_missing_events' limit when
	// the request gives none and its cap.
	defaultMissing = 10
	maxMissing     = 100
)

// graphReader reads events of one room by id for a walk of the graph,
// remembering what it read (and what it did not find).
type graphReader struct {
	s     *Service
	room  id.RoomID
	known map[id.EventID]*ServedEvent // nil value: not held
}

func (s *Service) newGraphReader(room id.RoomID) *graphReader {
	return &graphReader{s: s, room: room, known: map[id.EventID]*ServedEvent{}}
}

// get returns the events among ids the store holds, reading those not
// read before in one query.
func (g *graphReader) get(ctx context.Context, ids []id.EventID) ([]*ServedEvent, error) {
	var missing []id.EventID
	for _, e := range ids {
		if _, ok := g.known[e]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		evs, err := g.s.store.EventsByID(ctx, g.room, missing)
		if err != nil {
			return nil, err
		}
		for _, e := range missing {
			g.known[e] = nil
		}
		for _, se := range evs {
			g.known[se.Event.EventID()] = se
		}
	}
	out := make([]*ServedEvent, 0, len(ids))
	for _, e := range ids {
		if se := g.known[e]; se != nil {
			out = append(out, se)
		}
	}
	return out, nil
}

// prefetchBefore reads up to n timeline events at or before seq, newest
// first, into the cache: on a linear stretch of history a backward walk
// then finds every prev event without a query of its own.
func (g *graphReader) prefetchBefore(ctx context.Context, seq int64, n int) error {
	evs, err := g.s.store.Timeline(ctx, g.room, seq, Backward, n)
	if err != nil {
		return err
	}
	for _, se := range evs {
		if _, ok := g.known[se.Event.EventID()]; !ok {
			g.known[se.Event.EventID()] = &ServedEvent{Event: se.Event, Seq: se.Seq}
		}
	}
	return nil
}

// ServeBackfill returns up to limit events of the room, the events of
// from and those preceding them (GET /_matrix/federation/v1/backfill): a
// walk back along prev_events that always continues from the deepest event
// not yet taken, so the answer is the most recent history before from.
// Events the server may not see come redacted.
func (s *Service) ServeBackfill(ctx context.Context, origin id.ServerName, room id.RoomID, from []id.EventID, limit int) ([]*event.Event, error) {
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, err
	}
	limit = max(1, min(limit, maxBackfill))
	g := s.newGraphReader(room)
	start, err := g.get(ctx, from)
	if err != nil {
		return nil, err
	}
	var top int64
	for _, se := range start {
		top = max(top, se.Seq)
	}
	if top > 0 {
		if err := g.prefetchBefore(ctx, top, limit+len(start)); err != nil {
			return nil, err
		}
	}
	seen := map[id.EventID]bool{}
	q := &depthQueue{}
	for _, se := range start {
		if !seen[se.Event.EventID()] {
			seen[se.Event.EventID()] = true
			heap.Push(q, se)
		}
	}
	var out []*event.Event
	for q.Len() > 0 && len(out) < limit {
		se := heap.Pop(q).(*ServedEvent)
		out = append(out, se.Event)
		var next []id.EventID
		for _, p := range se.Event.PrevEventIDs() {
			if !seen[p] {
				seen[p] = true
				next = append(next, p)
			}
		}
		prev, err := g.get(ctx, next)
		if err != nil {
			return nil, err
		}
		for _, p := range prev {
			heap.Push(q, p)
		}
	}
	return s.forServer(ctx, origin, room, out)
}

// MissingEventsRequest is POST /get_missing_events' body.
type MissingEventsRequest struct {
	// Earliest are events the requester has: skipped, and not walked past.
	Earliest []id.EventID
	// Latest are the events whose missing ancestors are wanted.
	Latest []id.EventID
	// Limit caps the answer (default 10); MinDepth leaves out (and does
	// not walk past) shallower events.
	Limit    int
	MinDepth int64
}

// ServeMissingEvents answers POST /_matrix/federation/v1/get_missing_events:
// "a breadth-first walk of the prev_events for the latest_events, ignoring
// any events in earliest_events and stopping at the limit". The latest
// events themselves are not part of the answer, which is ordered oldest
// (least deep) first so that the requester can process it front to back.
// Events the server may not see come redacted.
func (s *Service) ServeMissingEvents(ctx context.Context, origin id.ServerName, room id.RoomID, req MissingEventsRequest) ([]*event.Event, error) {
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultMissing
	}
	limit = min(limit, maxMissing)
	g := s.newGraphReader(room)
	seen := map[id.EventID]bool{}
	for _, e := range req.Earliest {
		seen[e] = true
	}
	latest, err := g.get(ctx, req.Latest)
	if err != nil {
		return nil, err
	}
	var top int64
	var level []id.EventID
	for _, se := range latest {
		seen[se.Event.EventID()] = true
		top = max(top, se.Seq)
	}
	for _, se := range latest {
		for _, p := range se.Event.PrevEventIDs() {
			if !seen[p] {
				seen[p] = true
				level = append(level, p)
			}
		}
	}
	if top > 0 {
		if err := g.prefetchBefore(ctx, top, limit+1); err != nil {
			return nil, err
		}
	}
	var out []*event.Event
	for len(level) > 0 && len(out) < limit {
		evs, err := g.get(ctx, level)
		if err != nil {
			return nil, err
		}
		level = nil
		// The deepest first: when the limit cuts a level, what is left
		// out is the farthest from the latest events.
		slices.SortFunc(evs, func(a, b *ServedEvent) int { return cmp.Compare(b.Event.Depth(), a.Event.Depth()) })
		for _, se := range evs {
			if len(out) == limit {
				break
			}
			if se.Event.Depth() < req.MinDepth {
				continue
			}
			out = append(out, se.Event)
			for _, p := range se.Event.PrevEventIDs() {
				if !seen[p] {
					seen[p] = true
					level = append(level, p)
				}
			}
		}
	}
	sortByDepth(out)
	return s.forServer(ctx, origin, room, out)
}

// depthQueue is a max-heap of events by depth (then by sequence number,
// then event id, so that the walk is deterministic).
type depthQueue []*ServedEvent

func (q depthQueue) Len() int { return len(q) }
func (q depthQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if c := cmp.Compare(a.Event.Depth(), b.Event.Depth()); c != 0 {
		return c > 0
	}
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.Event.EventID() > b.Event.EventID()
}
func (q depthQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *depthQueue) Push(x any)   { *q = append(*q, x.(*ServedEvent)) }
func (q *depthQueue) Pop() any {
	old := *q
	n := len(old)
	x := old[n-1]
	*q = old[:n-1]
	return x
}
