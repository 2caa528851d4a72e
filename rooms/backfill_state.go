package rooms

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// The state before backfilled events. A backfilled event is stored with
// the state before it, as an event received in a transaction is, so that
// /context's state, /members?at= and the history visibility rules read
// the room as it was at the event. The state before the oldest event of a
// batch, whose prev events this server lacks, is asked of the server that
// sent the batch (GET /state_ids?event_id=, then /event or /state for the
// events not held, stored as outliers: as inbound_fetch.go does for a
// gap); from there it is folded forward through the batch, resolving the
// states after the prev events where they fork (the room version's state
// resolution), and it is read from the store where a prev event is held
// with its state.

// maxBackfillStateFetches bounds the /state_ids requests of one batch: in
// a linear stretch of history only its oldest event needs one.
const maxBackfillStateFetches = 3

// backfilledStates returns evs (newest first, checked by
// checkBackfilled) with the state before each where it could be found.
func (s *Service) backfilledStates(ctx context.Context, h *Head, server id.ServerName, evs []*event.Event) []BackfilledEvent {
	out := make([]BackfilledEvent, len(evs))
	for i, ev := range evs {
		out[i].Event = ev
	}
	rs, ok := s.store.(RemoteStore)
	if !ok || len(evs) == 0 {
		return out
	}
	fetcher, _ := s.backfill.fetcher.(RemoteFetcher)
	in := NewInbound(s, rs, InboundDeps{Keys: s.fed.Keys, Fetcher: fetcher})
	inBatch := make(map[id.EventID]bool, len(evs))
	for _, ev := range evs {
		inBatch[ev.EventID()] = true
	}
	var outside []id.EventID
	for _, ev := range evs {
		for _, p := range ev.PrevEventIDs() {
			if !inBatch[p] && !slices.Contains(outside, p) {
				outside = append(outside, p)
			}
		}
	}
	known, err := rs.KnownEvents(ctx, h.RoomID, outside)
	if err != nil {
		return out
	}
	after := map[id.EventID]State{}
	fetches := 0
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		prevs := ev.PrevEventIDs()
		var sets []State
		complete := true
		for _, p := range prevs {
			if st, ok := after[p]; ok {
				sets = append(sets, st)
				continue
			}
			var st State
			if !inBatch[p] {
				st, _ = in.stateAfter(ctx, known[p])
			}
			if st == nil {
				complete = false
				continue
			}
			sets = append(sets, st)
		}
		var before State
		switch {
		case len(prevs) == 0:
			before = State{}
		case complete:
			if before, err = in.resolve(ctx, h, sets); err != nil {
				before = nil
			}
		case fetcher != nil && fetches < maxBackfillStateFetches:
			fetches++
			if before, err = in.fetchStateBefore(ctx, server, h.RoomID, ev.EventID()); err != nil {
				s.logger.InfoContext(ctx, "state before a backfilled event not fetched", slog.String("room_id", string(h.RoomID)),
					slog.String("event_id", string(ev.EventID())), slog.String("server", string(server)), slog.String("error", err.Error()))
				before = nil
			}
		}
		if before == nil {
			continue
		}
		out[i].StateBefore = before
		after[ev.EventID()] = before
		// A state event that fails the auth rules against the state
		// before it does not change the state (spec "Rejection").
		if ev.IsState() && auth.Check(h.Version, ev, before) == nil {
			after[ev.EventID()] = before.With(ev)
		}
	}
	return out
}

// fetchStateBefore fetches the state before event e of room from server
// (fetchStateEvents); what it fetched is checked and stored as outliers.
func (in *Inbound) fetchStateBefore(ctx context.Context, server id.ServerName, room id.RoomID, e id.EventID) (State, error) {
	stateIDs, raws, err := in.fetchStateEvents(ctx, server, room, e, false)
	if err != nil {
		return nil, err
	}
	if err := in.storeFetched(ctx, room, raws, nil); err != nil {
		return nil, err
	}
	before, err := in.knownState(ctx, room, stateIDs)
	if err != nil {
		return nil, err
	}
	if before.Get(auth.TypeCreate, "") == nil {
		return nil, fmt.Errorf("the state before %s has no valid create event", e)
	}
	return before, nil
}
