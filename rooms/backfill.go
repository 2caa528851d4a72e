package rooms

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// Backfilling history for /messages (server-server API, "Backfilling and
// retrieving missing events"): a server that joined a room over
// federation holds its history from the join on, and may have holes in
// it (backfill_holes.go). When a client pages back past the first event
// this server holds, or through a hole, the missing history is asked of
// the other servers in the room (GET /backfill), each event is verified
// (signatures, content hash, auth against its auth events) and stored
// where its depth places it with the state before it (backfill_state.go),
// and the page goes on.

// Backfiller asks another server for the events preceding from (package
// federation implements it over GET /_matrix/federation/v1/backfill).
type Backfiller interface {
	Backfill(ctx context.Context, dest id.ServerName, room id.RoomID, from []id.EventID, limit int) ([]json.RawMessage, error)
}

// BackfillStore keeps backfilled history and the room's backward
// extremities (backfill_holes.go).
type BackfillStore interface {
	// InsertBackfilled stores evs, newest first, below every sequence
	// number of the room, their depth as topological position (raised
	// above their prev events in the timeline, capped at maxTopo), in the
	// timeline with the state before them when known but no stream
	// position: history, never news. Events the store holds already are
	// skipped, except outliers, which join the timeline; it returns how
	// many it stored or moved into the timeline.
	InsertBackfilled(ctx context.Context, room id.RoomID, evs []BackfilledEvent, maxTopo int64) (int, error)
	// BackwardExtremities returns, of the events given with their prev
	// events, those whose prev events are not all in the timeline, with
	// the missing ones, leaving out those SettleBackwardExtremity marked
	// exhausted; it records the ones it finds.
	BackwardExtremities(ctx context.Context, room id.RoomID, prevs map[id.EventID][]id.EventID) (map[id.EventID][]id.EventID, error)
	// SettleBackwardExtremity forgets ev as a backward extremity (its
	// hole was filled), or with exhausted keeps it as one no server could
	// fill, not to be reported again.
	SettleBackwardExtremity(ctx context.Context, room id.RoomID, ev id.EventID, exhausted bool) error
}

// BackfilledEvent is an event backfilled from another server with the
// state before it (backfill_state.go); StateBefore nil: not known.
type BackfilledEvent struct {
	Event       *event.Event
	StateBefore State
}

// backfillBatch is how many events one /backfill asks for.
const backfillBatch = 50

// backfillState is the federation side of backfilling.
type backfillState struct {
	fetcher Backfiller
}

// SetBackfill lets /messages fetch the history of rooms joined over
// federation and fill holes in it; app calls it once, before serving.
// Signatures are checked with the keys of SetFederation. When b is also a
// RemoteFetcher, the state before backfilled events is fetched with it
// (backfill_state.go).
func (s *Service) SetBackfill(b Backfiller) {
	s.backfill = &backfillState{fetcher: b}
}

func (s *Service) backfillStore() BackfillStore { return s.store }

// backfillServers are the servers to ask: the earliest event's sender's
// first (it was there then), then every other server with members now.
func backfillServers(st State, earliest *event.Event, self id.ServerName) []id.ServerName {
	var out []id.ServerName
	if srv := earliest.Sender().Server(); srv != self {
		out = append(out, srv)
	}
	for _, srv := range serversInRoom(st) {
		if srv != self && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	return out
}

// checkBackfilled parses and checks fetched events (server-server API,
// "Checks performed on receipt of a PDU", as far as history allows: the
// format of the room's version, the room, signatures, the content hash —
// a mismatch keeps the redacted event — and the auth rules against the
// event's own auth events, which must be known or in the batch). Events
// failing a check are left out. The result is newest first.
func (s *Service) checkBackfilled(ctx context.Context, h *Head, raws []json.RawMessage) []*event.Event {
	var evs []*event.Event
	for _, raw := range raws {
		ev, err := event.Parse(h.Version, raw)
		if err != nil || ev.RoomID() != h.RoomID {
			continue
		}
		if ev, _, err = event.VerifyOrRedact(ctx, ev, s.fed.Keys); err != nil {
			continue
		}
		evs = append(evs, ev)
	}
	// Oldest first, so that an event's auth events in the batch are
	// accepted before it.
	slices.SortFunc(evs, func(a, b *event.Event) int { return cmp.Compare(a.Depth(), b.Depth()) })
	accepted := map[id.EventID]*event.Event{}
	var want []id.EventID
	for _, ev := range evs {
		want = append(want, ev.AuthEventIDs()...)
	}
	known, err := s.store.EventsByID(ctx, h.RoomID, want)
	if err != nil {
		return nil
	}
	for _, se := range known {
		accepted[se.Event.EventID()] = se.Event
	}
	create := h.State.Get(auth.TypeCreate, "")
	var out []*event.Event
	for _, ev := range evs {
		var authEvents []auth.Event
		complete := true
		for _, a := range ev.AuthEventIDs() {
			if ae, ok := accepted[a]; ok {
				authEvents = append(authEvents, ae)
			} else {
				complete = false
			}
		}
		if !complete {
			continue
		}
		if h.Version.CreateEventDefinesRoomID && create != nil && ev.Type() != auth.TypeCreate {
			authEvents = append(authEvents, create)
		}
		if err := auth.CheckAuthEvents(h.Version, ev, authEvents); err != nil {
			continue
		}
		accepted[ev.EventID()] = ev
		out = append(out, ev)
	}
	slices.Reverse(out)
	return out
}
