package rooms

// The inbound PDU pipeline (server-server API, "Checks performed on
// receipt of a PDU"): every event another server sends us — in a
// transaction, or fetched to fill a gap — goes through Inbound before it
// touches the room graph.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/stateres"
)

// RemoteFetcher asks another server for the room graph we lack
// (server-server API, "Retrieving missing events", "Retrieving event
// authorisation information"). Package federation implements it over its
// client; rooms does not import federation.
type RemoteFetcher interface {
	// GetMissingEvents is POST /get_missing_events/{roomId}.
	GetMissingEvents(ctx context.Context, dest id.ServerName, room id.RoomID, earliest, latest []id.EventID, limit int, minDepth int64) ([]json.RawMessage, error)
	// GetEvent is GET /event/{eventId}: the one PDU.
	GetEvent(ctx context.Context, dest id.ServerName, eventID id.EventID) (json.RawMessage, error)
	// GetStateIDs is GET /state_ids/{roomId}?event_id=: the ids of the state
	// before the event and of its auth chain.
	GetStateIDs(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []id.EventID, err error)
	// GetState is GET /state/{roomId}?event_id=: the state before the
	// event and its auth chain, as PDUs.
	GetState(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []json.RawMessage, err error)
	// EventAuth is GET /event_auth/{roomId}/{eventId}: the event's auth chain.
	EventAuth(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) ([]json.RawMessage, error)
}

// InboundDeps are what the inbound pipeline needs from federation.
type InboundDeps struct {
	// Keys finds servers' signing keys (federation/keyring).
	Keys event.KeyLookup
	// Fetcher asks the sending server for missing events; nil fetches
	// nothing (events with unknown prev or auth events then fail).
	Fetcher RemoteFetcher
}

// Inbound accepts events from other servers into the room graph. It
// processes one event of a room at a time, in the order they arrive;
// different rooms in parallel.
type Inbound struct {
	s     *Service
	store RemoteStore
	deps  InboundDeps
	log   *slog.Logger

	mu    sync.Mutex
	locks map[id.RoomID]*roomLock
}

// roomLock is a FIFO lock: waiters get the room in the order they asked
// for it, so a room's PDUs are processed in the order they arrived, also
// across concurrent transactions.
type roomLock struct {
	held    bool
	waiters []chan struct{}
}

// NewInbound returns the inbound pipeline of s, persisting through store.
func NewInbound(s *Service, store RemoteStore, deps InboundDeps) *Inbound {
	logger := s.logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Inbound{s: s, store: store, deps: deps, log: logger, locks: map[id.RoomID]*roomLock{}}
}

// lockRoom waits until no other inbound event of room is being
// processed; waiters are served first come, first served.
func (in *Inbound) lockRoom(ctx context.Context, room id.RoomID) (unlock func(), err error) {
	in.mu.Lock()
	l := in.locks[room]
	if l == nil {
		l = &roomLock{}
		in.locks[room] = l
	}
	if !l.held {
		l.held = true
		in.mu.Unlock()
		return func() { in.unlockRoom(room, l) }, nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	in.mu.Unlock()
	select {
	case <-ch:
		return func() { in.unlockRoom(room, l) }, nil
	case <-ctx.Done():
		in.mu.Lock()
		defer in.mu.Unlock()
		if i := slices.Index(l.waiters, ch); i >= 0 {
			l.waiters = slices.Delete(l.waiters, i, i+1)
			return nil, ctx.Err()
		}
		// Handed the lock just as the context ended: pass it on.
		in.handOn(room, l)
		return nil, ctx.Err()
	}
}

func (in *Inbound) unlockRoom(room id.RoomID, l *roomLock) {
	in.mu.Lock()
	in.handOn(room, l)
	in.mu.Unlock()
}

// handOn gives the held lock to the first waiter, or frees it; in.mu is
// held.
func (in *Inbound) handOn(room id.RoomID, l *roomLock) {
	if len(l.waiters) == 0 {
		l.held = false
		delete(in.locks, room)
		return
	}
	next := l.waiters[0]
	l.waiters = l.waiters[1:]
	close(next)
}

// Errors of the pipeline, wrapped with the detail; the /send response
// carries their text.
var (
	// ErrPDUDropped: the event is not valid for its room version or fails
	// the signature checks; it is not stored.
	ErrPDUDropped = errors.New("event dropped")
	// ErrPDURejected: the event fails the authorisation rules; it is stored
	// rejected and never shown.
	ErrPDURejected = errors.New("event rejected")
)

// roomIDOf reads a PDU's room_id, which says the room version the PDU
// must be parsed with.
func roomIDOf(raw json.RawMessage) (id.RoomID, error) {
	var p struct {
		RoomID id.RoomID `json:"room_id"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.RoomID == "" {
		return "", fmt.Errorf("%w: the PDU has no room_id", ErrPDUDropped)
	}
	return p.RoomID, nil
}

// ReceivePDU runs one PDU sent by origin through the checks and persists
// it (spec "Checks performed on receipt of a PDU"). It returns the event's
// id when it could be parsed. nil means accepted (soft-failed and already
// known events included); ErrRoomNotFound when this server does not know
// the room; ErrPDUDropped or ErrPDURejected (wrapped) otherwise.
func (in *Inbound) ReceivePDU(ctx context.Context, origin id.ServerName, raw json.RawMessage) (id.EventID, error) {
	room, err := roomIDOf(raw)
	if err != nil {
		return "", err
	}
	h, err := in.s.store.Head(ctx, room)
	if err != nil {
		return "", err
	}
	ev, err := event.Parse(h.Version, raw)
	if err != nil {
		return "", fmt.Errorf("%w: invalid event for room version %s: %v", ErrPDUDropped, h.Version.ID, err)
	}
	return ev.EventID(), in.AcceptPDU(ctx, origin, ev)
}

// AcceptPDU is ReceivePDU for a parsed event (send_join, send_leave and
// send_knock hand their event over this way). An error means the event
// was not accepted.
func (in *Inbound) AcceptPDU(ctx context.Context, origin id.ServerName, ev *event.Event) error {
	unlock, err := in.lockRoom(ctx, ev.RoomID())
	if err != nil {
		return err
	}
	defer unlock()
	return in.receive(ctx, origin, ev, true)
}

// receive runs the checks on ev; missing prev events are asked of origin
// with get_missing_events when missingEvents is set (not for the events
// that call returns: their gaps are filled with the state instead).
func (in *Inbound) receive(ctx context.Context, origin id.ServerName, ev *event.Event, missingEvents bool) error {
	room := ev.RoomID()
	h, err := in.s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	v := h.Version
	if !serverInRoom(h.State, in.s.cfg.ServerName) {
		// A room we left, or only hold an invite to: its events are not
		// ours to take (we would fetch the whole gap on rejoining), but
		// for the end of an invite or knock we hold (inbound_invite.go).
		if in.endsOutOfBandMembership(h, ev) {
			return in.receiveOutOfBand(ctx, origin, ev)
		}
		return fmt.Errorf("%w: this server is not in the room", ErrPDUDropped)
	}
	if !auth.ServerAllowed(h.State, origin) || !auth.ServerAllowed(h.State, ev.Sender().Server()) {
		return fmt.Errorf("%w: the server is denied by the room's m.room.server_acl", ErrPDUDropped)
	}
	known, err := in.store.KnownEvents(ctx, room, []id.EventID{ev.EventID()})
	if err != nil {
		return err
	}
	if k := known[ev.EventID()]; k != nil {
		if k.Rejected != "" {
			return fmt.Errorf("%w: %s", ErrPDURejected, k.Rejected)
		}
		if !k.Outlier {
			return nil
		}
		// An outlier (a fetched auth event, say) now arrives in the
		// graph: it goes through every check and into the timeline.
	}
	// Signatures (dropped) and content hash (redacted).
	if in.deps.Keys == nil {
		return fmt.Errorf("%w: federation is not enabled", ErrPDUDropped)
	}
	ev, redacted, err := event.VerifyOrRedact(ctx, ev, in.deps.Keys)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPDUDropped, err)
	}
	if redacted {
		in.log.InfoContext(ctx, "content hash mismatch, event redacted", "event_id", ev.EventID(), "origin", origin)
	}
	// Auth against its own auth events.
	authEvents, err := in.authEventsOf(ctx, origin, ev)
	if err != nil {
		return err
	}
	if err := auth.CheckAuthEvents(v, ev, authEvents); err != nil {
		if !errors.Is(err, auth.ErrNotAllowed) {
			return fmt.Errorf("%w: %v", ErrPDUDropped, err)
		}
		return in.reject(ctx, ev, nil, err)
	}
	// Auth against the state before it.
	before, err := in.stateBefore(ctx, origin, h, ev, missingEvents)
	if err != nil {
		return err
	}
	if err := auth.Check(v, ev, before); err != nil {
		return in.reject(ctx, ev, before, err)
	}
	// Auth against current state (soft failure), and persist.
	var softFailed bool
	p, err := in.store.AppendRemote(ctx, room, ev, func(h *Head) (*RemoteDecision, error) {
		d := &RemoteDecision{StateBefore: before}
		if r := in.earlierRedaction(ctx, h, ev); r != nil {
			d.RedactedBy = r.EventID()
		}
		if err := auth.Check(v, ev, h.State); err != nil {
			d.SoftFailed, softFailed = true, true
			return d, nil
		}
		if d.CurrentState, d.Extremities, err = in.newHead(ctx, h, ev, before); err != nil {
			return nil, err
		}
		if k := ev.StateKey(); k != nil && d.RedactedBy != "" {
			key := auth.StateKey{Type: ev.Type(), StateKey: *k}
			if cur := d.CurrentState[key]; cur != nil && cur.EventID() == ev.EventID() {
				d.CurrentState = maps.Clone(d.CurrentState)
				d.CurrentState[key] = ev.Redacted()
			}
		}
		d.ApplyRedaction = in.redactionApplies(ctx, h, ev, before)
		return d, nil
	})
	if errors.Is(err, ErrEventIDTaken) {
		return fmt.Errorf("%w: %v", ErrPDUDropped, err)
	}
	if err != nil {
		return fmt.Errorf("persist %s: %w", ev.EventID(), err)
	}
	if softFailed {
		in.log.InfoContext(ctx, "event soft-failed", "event_id", ev.EventID(), "room_id", room, "origin", origin)
		return nil
	}
	in.s.notifier.OnNewEvent(ctx, NewEvent{
		RoomID: room, EventID: ev.EventID(), Seq: p.Seq, StreamPos: p.StreamPos,
		Type: ev.Type(), StateKey: ev.StateKey(), Membership: ev.Membership(), Sender: ev.Sender(),
	})
	return nil
}

// reject stores ev as rejected (with the state before it when known, so
// that the events after it see that state: spec "Rejection") and returns
// the error /send reports.
func (in *Inbound) reject(ctx context.Context, ev *event.Event, before State, cause error) error {
	reason := cause.Error()
	var re *auth.RuleError
	if errors.As(cause, &re) {
		reason = re.Error()
	}
	_, err := in.store.AppendRemote(ctx, ev.RoomID(), ev, func(*Head) (*RemoteDecision, error) {
		return &RemoteDecision{StateBefore: before, Rejected: reason}, nil
	})
	if errors.Is(err, ErrEventIDTaken) {
		return fmt.Errorf("%w: %v", ErrPDUDropped, err)
	}
	if err != nil {
		return fmt.Errorf("store rejected %s: %w", ev.EventID(), err)
	}
	in.log.InfoContext(ctx, "event rejected", "event_id", ev.EventID(), "room_id", ev.RoomID(), "reason", reason)
	return fmt.Errorf("%w: %s", ErrPDURejected, reason)
}

// rejectedEvent marks a stored rejected event for the auth rules and state
// resolution, which must not use it.
type rejectedEvent struct{ *event.Event }

func (rejectedEvent) Rejected() bool { return true }

func asAuthEvent(k *KnownEvent) auth.Event {
	if k.Rejected != "" {
		return rejectedEvent{k.Event}
	}
	return k.Event
}

// authEventsOf returns ev's auth events (and, in room version 12, the
// create event the room id names), fetching the missing ones from origin.
func (in *Inbound) authEventsOf(ctx context.Context, origin id.ServerName, ev *event.Event) ([]auth.Event, error) {
	ids := ev.AuthEventIDs()
	if ev.Version().CreateEventDefinesRoomID && len(ev.RoomID()) > 1 {
		ids = append(slices.Clone(ids), id.EventID("$"+string(ev.RoomID())[1:]))
	}
	known, err := in.store.KnownEvents(ctx, ev.RoomID(), ids)
	if err != nil {
		return nil, err
	}
	if len(known) < len(ids) && in.deps.Fetcher != nil {
		chain, err := in.deps.Fetcher.EventAuth(ctx, origin, ev.RoomID(), ev.EventID())
		if err != nil {
			in.log.WarnContext(ctx, "fetching the auth chain failed", "event_id", ev.EventID(), "origin", origin, "error", err)
		} else if err := in.storeFetched(ctx, ev.RoomID(), chain, nil); err != nil {
			return nil, err
		}
		if known, err = in.store.KnownEvents(ctx, ev.RoomID(), ids); err != nil {
			return nil, err
		}
	}
	out := make([]auth.Event, 0, len(known))
	for _, eid := range ids {
		k := known[eid]
		if k == nil {
			return nil, fmt.Errorf("%w: auth event %s is unknown and could not be fetched", ErrPDUDropped, eid)
		}
		out = append(out, asAuthEvent(k))
	}
	return out, nil
}

// stateBefore is the state before ev: the resolution of the states after
// its prev_events (spec "State resolution"). Prev events we lack are asked
// of origin (get_missing_events); when the gap cannot be closed, the state
// before each missing one is fetched and the missing events stored as
// outliers.
func (in *Inbound) stateBefore(ctx context.Context, origin id.ServerName, h *Head, ev *event.Event, missingEvents bool) (State, error) {
	prevs := ev.PrevEventIDs()
	if sameIDs(prevs, extremityIDs(h.Extremities)) {
		// The state after the forward extremities is current state.
		return h.State, nil
	}
	known, err := in.store.KnownEvents(ctx, ev.RoomID(), prevs)
	if err != nil {
		return nil, err
	}
	if missingEvents && in.deps.Fetcher != nil && slices.ContainsFunc(prevs, func(p id.EventID) bool {
		// Unknown, or known only as an outlier (an auth event fetched
		// for this very event, say): not in the graph yet.
		k := known[p]
		return k == nil || (k.Outlier && k.Rejected == "")
	}) {
		in.fetchMissing(ctx, origin, h, ev)
		if known, err = in.store.KnownEvents(ctx, ev.RoomID(), prevs); err != nil {
			return nil, err
		}
	}
	after := make([]State, 0, len(prevs))
	for _, p := range prevs {
		st, err := in.stateAfter(ctx, known[p])
		if err != nil {
			return nil, err
		}
		if st == nil {
			if st, err = in.fetchStateAfter(ctx, origin, ev.RoomID(), p); err != nil {
				return nil, err
			}
		}
		after = append(after, st)
	}
	return in.resolve(ctx, h, after)
}

// stateAfter is the state after a stored event; nil when not known (an
// unknown event or an outlier stored without state). A rejected event
// leaves the state as it was before it.
func (in *Inbound) stateAfter(ctx context.Context, k *KnownEvent) (State, error) {
	if k == nil || !k.StateKnown {
		return nil, nil
	}
	st, ok, err := in.store.StoredStateBefore(ctx, k.Event.RoomID(), k.Event.EventID())
	if err != nil || !ok {
		return nil, err
	}
	if k.Rejected == "" && k.Event.IsState() {
		st = st.With(k.Event)
	}
	return st, nil
}

// resolve is the resolution of states (the room version's algorithm).
func (in *Inbound) resolve(ctx context.Context, h *Head, states []State) (State, error) {
	switch len(states) {
	case 0:
		return State{}, nil
	case 1:
		return states[0], nil
	}
	sets := make([]stateres.StateMap, 0, len(states))
	byID := map[id.EventID]*event.Event{}
	for _, st := range states {
		m := make(stateres.StateMap, len(st))
		for k, ev := range st {
			m[k] = ev.EventID()
			byID[ev.EventID()] = ev
		}
		sets = append(sets, m)
	}
	res, err := stateres.Resolve(ctx, h.Version, sets, storeSource{in: in, room: h.RoomID, extra: byID})
	if errors.Is(err, stateres.ErrMissingEvent) {
		// A gap in an auth chain the sender did not fill: the event
		// cannot be placed, and retrying the transaction would not help.
		return nil, fmt.Errorf("%w: resolve state of %s: %v", ErrPDUDropped, h.RoomID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve state of %s: %w", h.RoomID, err)
	}
	out := make(State, len(res))
	for k, eid := range res {
		ev := byID[eid]
		if ev == nil {
			return nil, fmt.Errorf("%w: resolve state of %s: %s is in no state set", ErrPDUDropped, h.RoomID, eid)
		}
		out[k] = ev
	}
	return out, nil
}

// storeSource gives state resolution the room's stored events.
// (and extra: the events of the state sets, among them the event being
// persisted, which is not stored yet).
type storeSource struct {
	in    *Inbound
	room  id.RoomID
	extra map[id.EventID]*event.Event
}

func (s storeSource) Events(ctx context.Context, ids []id.EventID) (map[id.EventID]auth.Event, error) {
	known, err := s.in.store.KnownEvents(ctx, s.room, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[id.EventID]auth.Event, len(ids))
	for eid, k := range known {
		out[eid] = asAuthEvent(k)
	}
	for _, eid := range ids {
		if _, ok := out[eid]; !ok && s.extra[eid] != nil {
			out[eid] = s.extra[eid]
		}
	}
	return out, nil
}

// newHead is the room's current state and forward extremities once ev
// (allowed by before and by current state) is in: ev replaces the
// extremities it names; when others remain, current state is the
// resolution of the states after each.
func (in *Inbound) newHead(ctx context.Context, h *Head, ev *event.Event, before State) (State, []*event.Event, error) {
	afterEv := before
	if ev.IsState() {
		afterEv = before.With(ev)
	}
	prevs := ev.PrevEventIDs()
	extremities := []*event.Event{ev}
	for _, x := range h.Extremities {
		if !slices.Contains(prevs, x.EventID()) {
			extremities = append(extremities, x)
		}
	}
	if len(extremities) == 1 {
		return afterEv, extremities, nil
	}
	states := []State{afterEv}
	for _, x := range extremities[1:] {
		known, err := in.store.KnownEvents(ctx, h.RoomID, []id.EventID{x.EventID()})
		if err != nil {
			return nil, nil, err
		}
		st, err := in.stateAfter(ctx, known[x.EventID()])
		if err != nil {
			return nil, nil, err
		}
		if st == nil {
			return nil, nil, fmt.Errorf("%w: no state for forward extremity %s", ErrPDUDropped, x.EventID())
		}
		states = append(states, st)
	}
	cur, err := in.resolve(ctx, h, states)
	if err != nil {
		return nil, nil, err
	}
	return cur, extremities, nil
}

// redactionApplies reports whether ev is a redaction that takes effect:
// in every room version its sender may redact any event with the room's
// "redact" power level, and its own server's events otherwise (room
// versions 3 and later leave that check to the time of applying it: spec
// "Redactions", rooms/v3 "Handling redactions").
func (in *Inbound) redactionApplies(ctx context.Context, h *Head, ev *event.Event, before State) bool {
	if ev.Type() != auth.TypeRedaction || ev.Redacts() == "" {
		return false
	}
	known, err := in.store.KnownEvents(ctx, h.RoomID, []id.EventID{ev.Redacts()})
	if err != nil || known[ev.Redacts()] == nil {
		return false
	}
	target := known[ev.Redacts()].Event
	if target.Sender().Server() == ev.Sender().Server() {
		return true
	}
	pl, err := auth.LoadPowerLevels(h.Version, before)
	return err == nil && pl.UserLevel(ev.Sender()) >= pl.Redact
}

// earlierRedaction is a redaction of ev that arrived before ev and takes
// effect on it (its sender's server sent ev, or its sender has the
// "redact" power level in current state), nil when there is none.
func (in *Inbound) earlierRedaction(ctx context.Context, h *Head, ev *event.Event) *event.Event {
	rs, err := in.store.RedactionsOf(ctx, h.RoomID, ev.EventID())
	if err != nil || len(rs) == 0 {
		return nil
	}
	pl, plErr := auth.LoadPowerLevels(h.Version, h.State)
	for _, r := range rs {
		if r.Sender().Server() == ev.Sender().Server() || (plErr == nil && pl.UserLevel(r.Sender()) >= pl.Redact) {
			return r
		}
	}
	return nil
}

func extremityIDs(evs []*event.Event) []id.EventID {
	out := make([]id.EventID, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.EventID())
	}
	return out
}

// sameIDs reports whether a and b hold the same ids (as sets).
func sameIDs(a, b []id.EventID) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}
