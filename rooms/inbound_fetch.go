package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// maxMissingEvents is the limit of one get_missing_events request;
// maxMissingRounds bounds how many requests one gap may take (each asks
// for the events before the oldest the previous one returned), so a gap
// of up to maxMissingEvents*maxMissingRounds events comes back whole.
const (
	maxMissingEvents = 50
	maxMissingRounds = 10
)

// fetchMissing asks origin for the events between our forward
// extremities and ev (POST /get_missing_events, again from the oldest
// returned while they still lack prev events, a bounded number of times)
// and runs each through the pipeline, oldest first. Failures are logged:
// the caller falls back to fetching the state at the prev events it still
// lacks.
func (in *Inbound) fetchMissing(ctx context.Context, origin id.ServerName, h *Head, ev *event.Event) {
	var minDepth int64
	for i, x := range h.Extremities {
		if i == 0 || x.Depth() < minDepth {
			minDepth = x.Depth()
		}
	}
	earliest := extremityIDs(h.Extremities)
	collected := map[id.EventID]*event.Event{}
	latest := []id.EventID{ev.EventID()}
	for round := 0; round < maxMissingRounds && len(latest) > 0; round++ {
		raws, err := in.deps.Fetcher.GetMissingEvents(ctx, origin, ev.RoomID(), earliest, latest, maxMissingEvents, minDepth)
		if err != nil {
			in.log.WarnContext(ctx, "get_missing_events failed", "room_id", ev.RoomID(), "origin", origin, "error", err)
			break
		}
		var fresh []*event.Event
		for _, raw := range raws {
			e, err := event.Parse(h.Version, raw)
			if err != nil || e.RoomID() != ev.RoomID() || e.EventID() == ev.EventID() || collected[e.EventID()] != nil {
				continue
			}
			collected[e.EventID()] = e
			fresh = append(fresh, e)
		}
		if len(fresh) == 0 {
			break
		}
		// The next round starts from the returned events whose prev
		// events are neither returned nor stored.
		var prevs []id.EventID
		for _, e := range fresh {
			prevs = append(prevs, e.PrevEventIDs()...)
		}
		known, err := in.store.KnownEvents(ctx, ev.RoomID(), prevs)
		if err != nil {
			break
		}
		latest = nil
		for _, e := range fresh {
			for _, p := range e.PrevEventIDs() {
				if collected[p] == nil && known[p] == nil && !slices.Contains(latest, e.EventID()) {
					latest = append(latest, e.EventID())
				}
			}
		}
	}
	evs := make([]*event.Event, 0, len(collected))
	for _, e := range collected {
		evs = append(evs, e)
	}
	slices.SortStableFunc(evs, func(a, b *event.Event) int {
		if a.Depth() != b.Depth() {
			return int(a.Depth() - b.Depth())
		}
		return compareIDs(a.EventID(), b.EventID())
	})
	for _, e := range evs {
		if err := in.receive(ctx, origin, e, false); err != nil {
			in.log.InfoContext(ctx, "missing event not accepted", "event_id", e.EventID(), "origin", origin, "error", err)
		}
	}
}

// fetchStateAfter fetches the state after prev event p from origin: the
// state before it and p itself (fetchStateEvents), all stored as
// outliers, p with the state before it (spec "Retrieving missing events": "the server may
// fetch the state at the missing event").
func (in *Inbound) fetchStateAfter(ctx context.Context, origin id.ServerName, room id.RoomID, p id.EventID) (State, error) {
	if in.deps.Fetcher == nil {
		return nil, fmt.Errorf("%w: prev event %s is unknown", ErrPDUDropped, p)
	}
	h, err := in.s.store.Head(ctx, room)
	if err != nil {
		return nil, err
	}
	stateIDs, raws, err := in.fetchStateEvents(ctx, origin, room, p, true)
	if errors.Is(err, errStateNotFetched) {
		return nil, fmt.Errorf("%w: prev event %s is unknown and the state at it could not be fetched: %v", ErrPDUDropped, p, err)
	}
	if err != nil {
		return nil, err
	}
	var prev *event.Event
	var rest []json.RawMessage
	for _, raw := range raws {
		if e, err := event.Parse(h.Version, raw); err == nil && e.EventID() == p {
			prev = e
			continue
		}
		rest = append(rest, raw)
	}
	if err := in.storeFetched(ctx, room, rest, nil); err != nil {
		return nil, err
	}
	before, err := in.knownState(ctx, room, stateIDs)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if err := in.storeFetched(ctx, room, []json.RawMessage{prev.Raw()}, before); err != nil {
			return nil, err
		}
	}
	k, err := in.store.KnownEvents(ctx, room, []id.EventID{p})
	if err != nil {
		return nil, err
	}
	pk := k[p]
	if pk == nil {
		return nil, fmt.Errorf("%w: prev event %s could not be fetched", ErrPDUDropped, p)
	}
	if pk.Rejected == "" && pk.Event.IsState() {
		return before.With(pk.Event), nil
	}
	return before, nil
}

// storeFetched checks events fetched from another server and stores them
// as outliers (stateBefore, when not nil, as the state before each).
func (in *Inbound) storeFetched(ctx context.Context, room id.RoomID, raws []json.RawMessage, stateBefore State) error {
	h, err := in.s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	evs := in.parseVerified(ctx, h.Version, room, raws)
	outliers, err := in.checkOutliers(ctx, h.Version, room, evs)
	if err != nil {
		return err
	}
	if len(outliers) == 0 {
		return nil
	}
	if stateBefore != nil {
		for i := range outliers {
			outliers[i].StateBefore = stateBefore
		}
	}
	return in.store.StoreOutliers(ctx, room, nil, outliers)
}

// parseVerified parses events of room and checks their signatures;
// events that fail are left out (dropped), events whose content hash
// does not match are redacted (spec "Checks performed on receipt of a PDU"
// apply to fetched events too).
func (in *Inbound) parseVerified(ctx context.Context, v roomversion.Version, room id.RoomID, raws []json.RawMessage) []*event.Event {
	var parsed []*event.Event
	seen := map[id.EventID]bool{}
	for _, raw := range raws {
		e, err := event.Parse(v, raw)
		if err != nil {
			in.log.InfoContext(ctx, "fetched event dropped: invalid", "room_id", room, "error", err)
			continue
		}
		if seen[e.EventID()] || !inRoom(e, room) {
			continue
		}
		seen[e.EventID()] = true
		parsed = append(parsed, e)
	}
	return in.verifyAll(ctx, parsed)
}

// inRoom reports whether e belongs to room (a room version 12 create
// event has no room_id: the room id is its event id).
func inRoom(e *event.Event, room id.RoomID) bool {
	if e.RoomID() == room {
		return true
	}
	return e.Type() == auth.TypeCreate && e.Version().CreateEventDefinesRoomID && event.RoomIDOfCreate(e) == room
}

// checkOutliers orders evs so that every event comes after its auth events
// and runs the auth rules on each against its auth events (from evs or
// stored), returning what to store: the events not stored yet, rejected
// ones marked. Events whose auth events are nowhere are left out.
func (in *Inbound) checkOutliers(ctx context.Context, v roomversion.Version, room id.RoomID, evs []*event.Event) ([]OutlierEvent, error) {
	byID := make(map[id.EventID]*event.Event, len(evs))
	var ids []id.EventID
	for _, e := range evs {
		byID[e.EventID()] = e
		ids = append(ids, e.EventID())
		ids = append(ids, e.AuthEventIDs()...)
	}
	if v.CreateEventDefinesRoomID {
		ids = append(ids, id.EventID("$"+string(room)[1:]))
	}
	known, err := in.store.KnownEvents(ctx, room, ids)
	if err != nil {
		return nil, err
	}
	decided := map[id.EventID]auth.Event{}
	for eid, k := range known {
		decided[eid] = asAuthEvent(k)
	}
	var out []OutlierEvent
	for _, e := range topoByAuth(evs, byID) {
		if _, ok := known[e.EventID()]; ok {
			continue
		}
		authIDs := e.AuthEventIDs()
		if v.CreateEventDefinesRoomID && e.Type() != auth.TypeCreate {
			authIDs = append(slices.Clone(authIDs), id.EventID("$"+string(room)[1:]))
		}
		var authEvents []auth.Event
		missing := false
		for _, a := range authIDs {
			ae, ok := decided[a]
			if !ok {
				missing = true
				break
			}
			authEvents = append(authEvents, ae)
		}
		if missing {
			in.log.InfoContext(ctx, "fetched event left out: auth events missing", "event_id", e.EventID())
			continue
		}
		o := OutlierEvent{Event: e}
		if err := auth.CheckAuthEvents(v, e, authEvents); err != nil {
			if !errors.Is(err, auth.ErrNotAllowed) {
				in.log.InfoContext(ctx, "fetched event left out", "event_id", e.EventID(), "error", err)
				continue
			}
			o.Rejected = err.Error()
			decided[e.EventID()] = rejectedEvent{e}
		} else {
			decided[e.EventID()] = e
		}
		out = append(out, o)
	}
	return out, nil
}

// topoByAuth orders evs so that each comes after those of its auth events
// that are among evs (depth-first; ties by depth then id for a stable
// order). A cycle, which valid events cannot form, is broken anywhere.
func topoByAuth(evs []*event.Event, byID map[id.EventID]*event.Event) []*event.Event {
	sorted := slices.Clone(evs)
	slices.SortFunc(sorted, func(a, b *event.Event) int {
		if a.Depth() != b.Depth() {
			return int(a.Depth() - b.Depth())
		}
		return compareIDs(a.EventID(), b.EventID())
	})
	const (
		visiting = 1
		done     = 2
	)
	mark := map[id.EventID]int{}
	out := make([]*event.Event, 0, len(evs))
	var visit func(e *event.Event)
	visit = func(e *event.Event) {
		if mark[e.EventID()] != 0 {
			return
		}
		mark[e.EventID()] = visiting
		for _, a := range e.AuthEventIDs() {
			if ae := byID[a]; ae != nil {
				visit(ae)
			}
		}
		if v := e.Version(); v.CreateEventDefinesRoomID && e.Type() != auth.TypeCreate && len(e.RoomID()) > 1 {
			if c := byID[id.EventID("$"+string(e.RoomID())[1:])]; c != nil {
				visit(c)
			}
		}
		mark[e.EventID()] = done
		out = append(out, e)
	}
	for _, e := range sorted {
		visit(e)
	}
	return out
}

func compareIDs(a, b id.EventID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// knownState is the state made of the accepted state events among ids,
// as stored (a /state_ids answer once its events are stored).
func (in *Inbound) knownState(ctx context.Context, room id.RoomID, ids []id.EventID) (State, error) {
	stored, err := in.store.KnownEvents(ctx, room, ids)
	if err != nil {
		return nil, err
	}
	st := State{}
	for _, eid := range ids {
		k := stored[eid]
		if k == nil || k.Rejected != "" || !k.Event.IsState() {
			continue
		}
		st[auth.StateKey{Type: k.Event.Type(), StateKey: *k.Event.StateKey()}] = k.Event
	}
	return st, nil
}

// unknownAmong looks ids up in room and returns what is stored, and the
// ids not stored, each once, in their order: what a /state_ids answer
// still needs fetched.
func (in *Inbound) unknownAmong(ctx context.Context, room id.RoomID, ids []id.EventID) (map[id.EventID]*KnownEvent, []id.EventID, error) {
	known, err := in.store.KnownEvents(ctx, room, ids)
	if err != nil {
		return nil, nil, err
	}
	var need []id.EventID
	for _, eid := range ids {
		if known[eid] == nil && !slices.Contains(need, eid) {
			need = append(need, eid)
		}
	}
	return known, need, nil
}
