package rooms

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// ImportRoom persists a room this server joined over federation, from the
// send_join answer (server-server API, "Joining Rooms": "the resident
// server's response must be checked"). Every event of state and authChain
// is verified (signatures; content hash, redacting on mismatch) and checked
// against its own auth events, then stored as an outlier — rejected when
// it fails. join goes into the timeline with the returned state as the
// state before it, after passing the auth rules against its auth events
// and that state; current state becomes that state with the join. A room
// already known (a rejoin) gets the new state as its current state.
//
// It implements RoomImporter for the federated membership code.
func (in *Inbound) ImportRoom(ctx context.Context, version roomversion.Version, join *event.Event, state, authChain []*event.Event) error {
	room := join.RoomID()
	if join.Type() != auth.TypeMember || join.Membership() != "join" {
		return fmt.Errorf("%w: %s is not a join", ErrPDUDropped, join.EventID())
	}
	if join.Version().ID != version.ID {
		return fmt.Errorf("%w: the join is not of room version %s", ErrPDUDropped, version.ID)
	}
	if in.deps.Keys == nil {
		return fmt.Errorf("%w: federation is not enabled", ErrPDUDropped)
	}
	if err := event.Verify(ctx, join, in.deps.Keys); err != nil {
		return fmt.Errorf("%w: the join event: %v", ErrPDUDropped, err)
	}
	unlock, err := in.lockRoom(ctx, room)
	if err != nil {
		return err
	}
	defer unlock()

	var candidates []*event.Event
	seen := map[id.EventID]bool{}
	for _, e := range append(append([]*event.Event(nil), authChain...), state...) {
		if seen[e.EventID()] || !inRoom(e, room) || e.Version().ID != version.ID {
			continue
		}
		seen[e.EventID()] = true
		candidates = append(candidates, e)
	}
	evs := in.verifyAll(ctx, candidates)
	outliers, err := in.checkOutliers(ctx, version, room, evs)
	if err != nil {
		return err
	}
	if err := in.store.StoreOutliers(ctx, room, &version, outliers); err != nil {
		return fmt.Errorf("store the state of %s: %w", room, err)
	}
	stateIDs := make([]id.EventID, 0, len(state))
	for _, e := range state {
		stateIDs = append(stateIDs, e.EventID())
	}
	known, err := in.store.KnownEvents(ctx, room, stateIDs)
	if err != nil {
		return err
	}
	before := State{}
	for _, eid := range stateIDs {
		k := known[eid]
		if k == nil || k.Rejected != "" || !k.Event.IsState() {
			continue
		}
		before[auth.StateKey{Type: k.Event.Type(), StateKey: *k.Event.StateKey()}] = k.Event
	}
	if before.Get(auth.TypeCreate, "") == nil {
		return fmt.Errorf("%w: the room state has no valid create event", ErrPDURejected)
	}
	authEvents, err := in.authEventsOf(ctx, "", join)
	if err != nil {
		return err
	}
	if err := auth.CheckAuthEvents(version, join, authEvents); err != nil {
		return fmt.Errorf("%w: the join against its auth events: %v", ErrPDURejected, err)
	}
	if err := auth.Check(version, join, before); err != nil {
		return fmt.Errorf("%w: the join against the room state: %v", ErrPDURejected, err)
	}
	p, err := in.store.AppendRemote(ctx, room, join, func(h *Head) (*RemoteDecision, error) {
		if h.State.Get(auth.TypeMember, *join.StateKey()) != nil &&
			h.State.Get(auth.TypeMember, *join.StateKey()).EventID() == join.EventID() {
			return nil, errAlreadyImported
		}
		return &RemoteDecision{StateBefore: before, CurrentState: before.With(join), Extremities: []*event.Event{join}}, nil
	})
	if errors.Is(err, errAlreadyImported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("persist the join to %s: %w", room, err)
	}
	in.s.notifier.OnNewEvent(ctx, NewEvent{
		RoomID: room, EventID: join.EventID(), Seq: p.Seq, StreamPos: p.StreamPos,
		Type: join.Type(), StateKey: join.StateKey(), Membership: join.Membership(), Sender: join.Sender(),
	})
	return nil
}

var errAlreadyImported = errors.New("rooms: the join is imported already")

// verifyAll checks the signatures of evs on every CPU (a large room's
// state is thousands of events) and returns those that pass, redacted
// where their content hash does not match, in their order.
func (in *Inbound) verifyAll(ctx context.Context, evs []*event.Event) []*event.Event {
	out := make([]*event.Event, len(evs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(evs)/64, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(evs) {
					return
				}
				e, redacted, err := event.VerifyOrRedact(ctx, evs[i], in.deps.Keys)
				if err != nil {
					in.log.InfoContext(ctx, "event dropped", "event_id", evs[i].EventID(), "error", err)
					continue
				}
				if redacted {
					in.log.InfoContext(ctx, "content hash mismatch, event redacted", "event_id", e.EventID())
				}
				out[i] = e
			}
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(e *event.Event) bool { return e == nil })
}
