package syncer

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/parleyhq/parley/id"
)

// builder builds one /sync response for the range (since, pos] of the
// global stream.
type builder struct {
	s       *Service
	req     Request
	filter  *Filter
	since   Token
	initial bool
	pos     int64 // the timeline position of at
	// at is the position of every stream the response reads up to; it
	// becomes next_batch.
	at Token

	// joined are the rooms the user is joined to at pos: the rooms whose
	// commits wake this sync when it waits.
	joined []id.RoomID
	// ignored are the users the syncing user ignores.
	ignored map[id.UserID]bool

	// mu guards the response's room maps while rooms are built
	// concurrently (addRooms).
	mu sync.Mutex

	// pre is what prefetchRooms read of the rooms of an initial sync, read
	// only once rooms are being built; preAt the read it answers.
	pre   map[id.RoomID]*RoomPrefetch
	preAt PrefetchRequest
}

// roomPlan is what the builder knows of one room before reading it.
type roomPlan struct {
	room       id.RoomID
	membership MembershipChange // the latest change at or below pos
	// full: send the full state before the timeline and check the
	// visibility of every event (initial sync, full_state, a room joined
	// or rejoined within the range); otherwise the user was joined all
	// along and the state section is the delta of the range.
	full bool
	// joinedInRange: an incremental sync of a room the user joined (or
	// rejoined) within the range. Its timeline is the room's latest events,
	// as in an initial sync, not only those of the range: a client seeing
	// the room for the first time needs recent history and a limited flag
	// to page back from (Synapse does the same).
	joinedInRange bool
}

func (b *builder) build(ctx context.Context) (*Response, error) {
	resp := newResponse()
	sinceTL := b.since.Pos(StreamTimeline)
	resp.NextBatch = b.at.String()
	if err := b.loadIgnored(ctx); err != nil {
		return nil, err
	}

	current, changes, err := b.memberships(ctx, sinceTL)
	if err != nil {
		return nil, err
	}
	latest := make(map[id.RoomID]MembershipChange, len(current))
	atSince := make(map[id.RoomID]string, len(current))
	order := make([]id.RoomID, 0, len(current))
	for _, c := range current {
		latest[c.RoomID] = c
		atSince[c.RoomID] = c.Membership
		order = append(order, c.RoomID)
	}
	churned := map[id.RoomID]bool{} // a non-join membership within the range
	if !b.initial {
		first := map[id.RoomID]bool{}
		for _, c := range changes {
			if !first[c.RoomID] {
				first[c.RoomID] = true
				atSince[c.RoomID] = c.Prev
			}
			if c.Membership != "join" {
				churned[c.RoomID] = true
			}
		}
	}

	roomFilter := b.filter.RoomFilterOf()
	var quiet []roomPlan // joined all along: read only if active
	var plans []roomPlan
	for _, room := range order {
		m := latest[room]
		if m.Membership == "join" {
			b.joined = append(b.joined, room)
		}
		if !roomFilter.RoomAllowed(room) {
			continue
		}
		changed := m.StreamPos > sinceTL
		switch m.Membership {
		case "join":
			full := b.initial || b.req.FullState || atSince[room] != "join" || churned[room]
			if full {
				joinedInRange := !b.initial && (atSince[room] != "join" || churned[room])
				plans = append(plans, roomPlan{room: room, membership: m, full: true, joinedInRange: joinedInRange})
			} else {
				quiet = append(quiet, roomPlan{room: room, membership: m})
			}
		case "invite", "knock":
			if b.initial || changed {
				plans = append(plans, roomPlan{room: room, membership: m})
			}
		case "leave", "ban":
			// Incremental syncs report the rooms left within the range;
			// initial ones list all left rooms only when asked.
			if (!b.initial && changed) || ((b.initial || b.req.FullState) && b.filter.IncludeLeave()) {
				plans = append(plans, roomPlan{room: room, membership: m, full: true})
			}
		}
	}
	if len(quiet) > 0 {
		ids := make([]id.RoomID, len(quiet))
		for i, p := range quiet {
			ids[i] = p.room
		}
		active, err := b.s.store.ActiveRooms(ctx, ids, sinceTL, b.pos)
		if err != nil {
			return nil, err
		}
		for _, p := range quiet {
			if slices.Contains(active, p.room) {
				plans = append(plans, p)
			}
		}
	}

	if err := b.prefetchRooms(ctx, plans); err != nil {
		return nil, err
	}
	if err := b.addRooms(ctx, resp, plans); err != nil {
		return nil, err
	}
	return b.finish(ctx, resp)
}

// roomWorkers bounds how many rooms one response builds at once. Each
// room is a few sequential round trips to the database (timeline, state,
// summary); an initial sync of hundreds of rooms spent its time waiting
// on them one after another (issue #9: 500 rooms took 1.7 s with 0.2 s of
// CPU). A handful of workers overlaps those waits without taking the
// whole connection pool from the syncs of other users.
const roomWorkers = 6

// addRooms adds every planned room to the response, several at a time
// when there are many; the first error wins.
func (b *builder) addRooms(ctx context.Context, resp *Response, plans []roomPlan) error {
	if len(plans) <= 1 {
		for _, p := range plans {
			if err := b.addRoom(ctx, resp, p); err != nil {
				return fmt.Errorf("sync room %s: %w", p.room, err)
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan roomPlan)
	var wg sync.WaitGroup
	for range min(roomWorkers, len(plans)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := b.addRoom(ctx, resp, p); err != nil {
					cancel(fmt.Errorf("sync room %s: %w", p.room, err))
				}
			}
		}()
	}
feed:
	for _, p := range plans {
		select {
		case next <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// put applies one write to the response under the builder's lock.
func (b *builder) put(write func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	write()
}

// finish adds what the streams other than the timeline hold for the range
// and ends the answer; next_batch moves only as far as a source went in a
// stream it delivered only part of (HoldPos).
func (b *builder) finish(ctx context.Context, resp *Response) (*Response, error) {
	if err := b.fillSources(ctx, resp); err != nil {
		return nil, err
	}
	if len(resp.held) > 0 {
		for st, p := range resp.held {
			b.at = b.at.With(st, p)
		}
		resp.NextBatch = b.at.String()
	}
	resp.empty = resp.isEmpty()
	return resp, nil
}
