package rooms

import (
	"context"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

// Holes in a room's history (server-server API, "Backfilling and
// retrieving missing events"). A backward extremity is a timeline event
// whose prev_events are not in the timeline: the first event held of a
// room joined over federation, and, in the middle of history, an event
// accepted after a gap that could not be closed — a server that left the
// room and rejoined was sent nothing meanwhile, and one that was down is
// sent only the latest events on catch-up, get_missing_events giving up
// past its limit. /messages reaching such an event asks other servers for
// the events before it (GET /backfill from its missing prev events),
// stores what comes back where its depth places it, below the event, and
// goes on reading: the page has the hole's events, each once, in order.
// A hole is done when its prev events are held, or when the servers asked
// had nothing more (recorded: not asked again, sql/0023).

// holesIn returns, of a page's batch, the events whose prev events are
// not all in the timeline, with the missing ones. Only events that can
// have such prev events are looked up: backfilled history, events from
// other servers, and memberships (a local join or leave built on another
// server's template names that server's latest events); a local event is
// built on the room's forward extremities, which are in the timeline. A
// room no other server's user was ever in has no holes.
func (s *Service) holesIn(ctx context.Context, h *Head, batch []TopoEvent) (map[id.EventID][]id.EventID, error) {
	if s.backfill == nil || len(batch) == 0 || !s.sharedWithOthers(h.State) {
		return nil, nil
	}
	inBatch := make(map[id.EventID]bool, len(batch))
	for _, te := range batch {
		inBatch[te.Event.EventID()] = true
	}
	candidates := map[id.EventID][]id.EventID{}
	for _, te := range batch {
		ev := te.Event
		if te.StreamPos != 0 && ev.Sender().Server() == s.cfg.ServerName && ev.Type() != auth.TypeMember {
			continue
		}
		var outside []id.EventID
		for _, p := range ev.PrevEventIDs() {
			if !inBatch[p] {
				outside = append(outside, p)
			}
		}
		if len(outside) > 0 {
			candidates[ev.EventID()] = outside
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	return s.backfillStore().BackwardExtremities(ctx, h.RoomID, candidates)
}

// sharedWithOthers reports whether a user of another server has a
// membership in st (a member who left keeps one): a room only this
// server's users were ever in was never backfilled nor sent to us.
func (s *Service) sharedWithOthers(st State) bool {
	for k := range st {
		if k.Type == auth.TypeMember && id.UserID(k.StateKey).Server() != s.cfg.ServerName {
			return true
		}
	}
	return false
}

// fillHole asks other servers for the events before x, a backward
// extremity, from its missing prev events, checks them and stores them
// below x with the state before each (backfill_state.go). It reports whether anything was stored. When every server
// asked answered and none had anything new, the hole is recorded as
// exhausted; when some could not be reached it is left to a later page.
func (s *Service) fillHole(ctx context.Context, h *Head, x TopoEvent, missing []id.EventID) bool {
	if s.backfill == nil || s.fed.Keys == nil {
		return false
	}
	room := h.RoomID
	answered, failed := 0, 0
	for _, server := range backfillServers(h.State, x.Event, s.cfg.ServerName) {
		raws, err := s.backfill.fetcher.Backfill(ctx, server, room, missing, backfillBatch)
		if err != nil {
			failed++
			s.logger.InfoContext(ctx, "backfill failed", slog.String("room_id", string(room)),
				slog.String("event_id", string(x.Event.EventID())), slog.String("server", string(server)),
				slog.String("error", err.Error()))
			continue
		}
		answered++
		evs := s.backfilledStates(ctx, h, server, s.checkBackfilled(ctx, h, raws))
		n, err := s.backfillStore().InsertBackfilled(ctx, room, evs, x.Topo-1)
		if err != nil {
			s.logger.WarnContext(ctx, "store backfilled events", slog.String("room_id", string(room)), slog.String("error", err.Error()))
			return false
		}
		if n > 0 {
			s.settleHole(ctx, room, x, false)
			return true
		}
	}
	if answered > 0 && failed == 0 {
		s.settleHole(ctx, room, x, true)
	}
	return false
}

// settleHole records the end of a hole; a failure only means the hole
// is looked at again.
func (s *Service) settleHole(ctx context.Context, room id.RoomID, x TopoEvent, exhausted bool) {
	if err := s.backfillStore().SettleBackwardExtremity(ctx, room, x.Event.EventID(), exhausted); err != nil {
		s.logger.WarnContext(ctx, "settle backward extremity", slog.String("room_id", string(room)), slog.String("error", err.Error()))
	}
}
