package rooms

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
)

const (
	defaultPageLimit = 10
	maxPageLimit     = 1000
	// maxScan bounds the events one page reads while skipping what the
	// filter or the visibility rules hide.
	maxScan = 5000
	// maxPageBackfills bounds the holes one page fills (each a round of
	// /backfill requests).
	maxPageBackfills = 3
)

// MessagesRequest is GET /rooms/{roomId}/messages' parameters.
type MessagesRequest struct {
	From, To string // tokens; From "" = the end (b) or the start (f)
	Dir      Direction
	Limit    int
	Filter   *EventFilter
}

// Page is a /messages answer.
type Page struct {
	Start string
	End   string // "" when there are no more events in that direction
	Chunk []*StoredEvent
	State []*StoredEvent
}

// readerVisibility loads the visibility rules for a reader and refuses
// one who never was in a room that is not world readable.
func (s *Service) readerVisibility(ctx context.Context, user id.UserID, room id.RoomID) (*Head, *visibility, error) {
	h, vis, err := s.headVisibility(ctx, room, user)
	if err != nil {
		return nil, nil, err
	}
	if len(vis.mine) == 0 && !vis.worldReadable() {
		return nil, nil, mxerr.Forbidden.Msg("you are not a member of this room")
	}
	return h, vis, nil
}

// Messages pages through a room's timeline (GET /rooms/{roomId}/messages)
// in topological order (topological.go), skipping events the filter or
// the history visibility rules hide.
func (s *Service) Messages(ctx context.Context, user id.UserID, room id.RoomID, req MessagesRequest) (*Page, error) {
	page, _, err := s.messages(ctx, user, room, req)
	return page, err
}

// messages is Messages, returning also the position where the page ends
// (page.End's, also when there is no more).
func (s *Service) messages(ctx context.Context, user id.UserID, room id.RoomID, req MessagesRequest) (*Page, TopoPos, error) {
	h, vis, err := s.readerVisibility(ctx, user, room)
	if err != nil {
		return nil, TopoPos{}, err
	}
	f := req.Filter
	if f == nil {
		f = &EventFilter{}
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultPageLimit
	}
	limit = min(limit, maxPageLimit)
	dir := req.Dir
	if dir != Forward {
		dir = Backward
	}
	pos := topoEnd
	if dir == Forward {
		pos = topoStart
	}
	if req.From != "" {
		if pos, err = s.topoPosition(ctx, room, req.From, h.Seq); err != nil {
			return nil, pos, err
		}
	}
	var stop *TopoPos
	if req.To != "" {
		p, err := s.topoPosition(ctx, room, req.To, h.Seq)
		if err != nil {
			return nil, pos, err
		}
		stop = &p
	}
	// start is the same as from when given (client-server API, GET
	// /messages); from the end, the position of the room's latest event,
	// so that the token names this moment (GET /members?at=).
	page := &Page{Start: req.From}
	if page.Start == "" {
		page.Start = TopoToken(pos)
	}
	atEnd := req.From == "" && dir == Backward
	rules := &historyRules{s: s, room: room, vis: vis}
	scanned, more, fills, deferred := 0, true, 0, false
	// Holes in what this server holds of a room joined over federation
	// are filled from other servers as the page reaches them, a few times
	// per page (backfill_holes.go): backwards right after the event whose
	// prev events are missing, forwards right before it; the page then
	// reads on from where it is, through the events just stored. History
	// the reader may not see is skipped.
	fill := func(te TopoEvent, missing []id.EventID) (bool, error) {
		fills++
		if !s.fillHole(ctx, h, te, missing) {
			return false, nil
		}
		// The rules read the history visibility events just backfilled
		// too.
		_, vis, err := s.headVisibility(ctx, room, user)
		if err != nil {
			return false, err
		}
		rules = &historyRules{s: s, room: room, vis: vis}
		return true, nil
	}
	if dir == Backward && req.From != "" && s.backfill != nil && s.sharedWithOthers(h.State) {
		// A page that starts right below an event (a sync's prev_batch
		// below the join of a room joined over federation) starts with
		// its hole.
		above, err := s.store.HistoryPage(ctx, room, pos, Forward, 1)
		if err != nil {
			return nil, pos, err
		}
		holes, err := s.holesIn(ctx, h, above)
		if err != nil {
			return nil, pos, err
		}
		if len(above) == 1 && holes[above[0].Event.EventID()] != nil {
			if _, err := fill(above[0], holes[above[0].Event.EventID()]); err != nil {
				return nil, pos, err
			}
		}
	}
	for len(page.Chunk) < limit && scanned < maxScan && more && !deferred {
		want := min(max(limit*2, 20), maxScan-scanned)
		batch, err := s.store.HistoryPage(ctx, room, pos, dir, want)
		if err != nil {
			return nil, pos, err
		}
		more = len(batch) == want
		if atEnd && len(batch) > 0 {
			page.Start, atEnd = TopoToken(batch[0].Pos()), false
		}
		holes, err := s.holesIn(ctx, h, batch)
		if err != nil {
			return nil, pos, err
		}
		filled := false
		for _, te := range batch {
			at := te.Pos()
			if stop != nil && ((dir == Backward && !stop.Less(at)) || (dir == Forward && stop.Less(at))) {
				more = false
				break
			}
			hole := holes[te.Event.EventID()] != nil
			if hole && fills >= maxPageBackfills {
				// The next page starts at this event and fills its hole.
				deferred = true
				break
			}
			if hole && dir == Forward {
				if filled, err = fill(te, holes[te.Event.EventID()]); err != nil || filled {
					break
				}
			}
			scanned++
			if dir == Backward {
				pos = at.before()
			} else {
				pos = at
			}
			if rules.visible(ctx, te.StoredEvent) && f.Matches(te.StoredEvent) {
				page.Chunk = append(page.Chunk, te.StoredEvent)
			}
			if hole && dir == Backward {
				if filled, err = fill(te, holes[te.Event.EventID()]); err != nil || filled {
					break
				}
			}
			if len(page.Chunk) == limit {
				break
			}
		}
		if err != nil {
			return nil, pos, err
		}
		if filled {
			more = true
		}
	}
	if more || len(page.Chunk) == limit || deferred {
		page.End = TopoToken(pos)
	}
	if f.LazyLoadMembers {
		page.State = membersOf(h.State, page.Chunk, room)
	}
	return page, pos, nil
}

// membersOf returns the member events of the senders of evs, for lazy
// loading members (client-server API, "Lazy-loading room members").
func membersOf(st State, evs []*StoredEvent, room id.RoomID) []*StoredEvent {
	var seen []id.UserID
	var out []*StoredEvent
	for _, se := range evs {
		u := se.Event.Sender()
		if slices.Contains(seen, u) {
			continue
		}
		seen = append(seen, u)
		if m := st.Get(auth.TypeMember, string(u)); m != nil {
			out = append(out, &StoredEvent{Event: m, RoomID: room})
		}
	}
	return out
}

// EventContext is a /context answer.
type EventContext struct {
	Event      *StoredEvent
	Before     []*StoredEvent // newest first
	After      []*StoredEvent // oldest first
	Start, End string
	State      []*StoredEvent
}

// Context returns an event with the events around it (GET
// /rooms/{roomId}/context/{eventId}); limit counts both sides.
func (s *Service) Context(ctx context.Context, user id.UserID, room id.RoomID, eventID id.EventID, limit int, f *EventFilter) (*EventContext, error) {
	se, err := s.Event(ctx, user, room, eventID)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = defaultPageLimit
	}
	if f == nil {
		f = &EventFilter{}
	}
	at, err := s.store.EventPos(ctx, room, se.Seq)
	if err != nil {
		return nil, err
	}
	before, first, err := s.messages(ctx, user, room, MessagesRequest{From: TopoToken(at.before()), Dir: Backward, Limit: max(limit/2, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	after, end, err := s.messages(ctx, user, room, MessagesRequest{From: TopoToken(at), Dir: Forward, Limit: max(limit-limit/2, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	// start and end continue /messages before the first event returned
	// and after the last.
	out := &EventContext{Event: se, Before: before.Chunk, After: after.Chunk,
		Start: TopoToken(first), End: TopoToken(end)}
	last := se
	if n := len(after.Chunk); n > 0 {
		last = after.Chunk[n-1]
	}
	// The state at the last event returned: the state before it, with it.
	// Not the state before the event that arrived after it: backfilled
	// history does not arrive in order.
	st, err := s.store.StateBefore(ctx, room, last.Seq)
	if err != nil {
		return nil, err
	}
	if last.Event.IsState() {
		st = st.With(last.Event)
	}
	if f.LazyLoadMembers {
		all := append(append(append([]*StoredEvent{}, before.Chunk...), se), after.Chunk...)
		out.State = membersOf(st, all, room)
		return out, nil
	}
	for _, ev := range st {
		out.State = append(out.State, &StoredEvent{Event: ev, RoomID: room})
	}
	return out, nil
}

// Redact redacts an event (PUT /rooms/{roomId}/redact/{eventId}/{txnId}).
// Redacting someone else's event needs the room's "redact" power level;
// the auth rules of room versions 3 and later leave that to the server
// (client-server API, "Redactions").
func (s *Service) Redact(ctx context.Context, v Viewer, room id.RoomID, target id.EventID, txnID, reason string) (id.EventID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return "", err
	}
	se, err := s.Event(ctx, v.User, room, target)
	if err != nil {
		return "", err
	}
	if se.Event.Sender() != v.User {
		pl, err := auth.LoadPowerLevels(h.Version, h.State)
		if err != nil {
			return "", err
		}
		if pl.UserLevel(v.User) < pl.Redact {
			return "", mxerr.Forbidden.Msg("you may not redact other users' events")
		}
	}
	content := map[string]any{}
	if reason != "" {
		content["reason"] = reason
	}
	d := draft{Sender: v.User, Type: auth.TypeRedaction}
	if h.Version.V11Semantics {
		content["redacts"] = string(target)
	} else {
		d.Redacts = target
	}
	d.Content = mustJSON(content)
	return s.send(ctx, room, &TxnKey{User: v.User, Device: v.Device, TxnID: txnID}, d)
}

// TimestampToEvent finds the event closest to ts in dir that the user may
// see (GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event).
func (s *Service) TimestampToEvent(ctx context.Context, user id.UserID, room id.RoomID, ts int64, dir Direction) (*StoredEvent, error) {
	_, vis, err := s.readerVisibility(ctx, user, room)
	if err != nil {
		return nil, err
	}
	se, err := s.store.EventAtTime(ctx, room, ts, dir)
	if err != nil {
		return nil, err
	}
	if !(&historyRules{s: s, room: room, vis: vis}).visible(ctx, se) {
		return nil, mxerr.NotFound.Msg("no visible event near that time")
	}
	return se, nil
}

// historyRules applies the history visibility rules (visibility.go) to
// events of the timeline for the reader of vis.
//
// History backfilled from other servers (stream position 0: stored before
// the room's first event, never news) did not arrive in order with the
// state this server holds — the state the room was joined with has lower
// sequence numbers than none of it — so for it the rules read the state by
// depth: the history visibility in force is that of the deepest known
// m.room.history_visibility event shallower than the event (the history
// between it and the join is held: backfill walks back from the join).
// When there is none but the room has one, the visibility is that of an
// older event not fetched yet, unknown, and the event is not shown — a
// room whose history was "joined" must not show a later joiner its past
// because the event that said so was not backfilled yet — unless the
// history is held back to the room's creation: then there was none, and
// the default ("shared") applies.
//
// History backfilled with the state before it (backfill_state.go) is read
// by that state instead, as an event that arrived is: the visibility and
// the reader's membership in it (backfilledView).
type historyRules struct {
	s        *Service
	room     id.RoomID
	vis      *visibility
	complete *bool // the room's history is held back to its m.room.create; nil: not read yet

	// views are the reader's views of the state before backfilled
	// events, by sequence number, for the ranges in loaded.
	views  map[int64]UserView
	loaded [][2]int64
}

func (r *historyRules) visible(ctx context.Context, se *StoredEvent) bool {
	vis := r.vis
	if se.StreamPos != 0 {
		return vis.canSee(se.Seq)
	}
	depth := se.Event.Depth()
	if view, ok := r.backfilledView(ctx, se); ok {
		return r.seesBackfilled(se, view)
	}
	hv, found := "shared", false
	var at int64
	for _, e := range vis.hv {
		d := e.Event.Depth()
		if d >= depth || (found && d <= at) {
			continue
		}
		found, at = true, d
		var c struct {
			HV string `json:"history_visibility"`
		}
		if json.Unmarshal(e.Event.Content(), &c) == nil && c.HV != "" {
			hv = c.HV
		} else {
			hv = "shared"
		}
	}
	if !found && len(vis.hv) > 0 && !r.heldFromCreation(ctx) {
		return false
	}
	if hv == "world_readable" {
		return true
	}
	// The reader's membership once the event applies, and whether they
	// joined at or after it.
	m, joinedSince := "", false
	found, at = false, 0
	for _, e := range vis.mine {
		d := e.Event.Depth()
		if d >= depth && e.Event.Membership() == "join" {
			joinedSince = true
		}
		if d <= depth && (!found || d > at) {
			found, at, m = true, d, e.Event.Membership()
		}
	}
	if m == "join" {
		return true
	}
	if hv == "shared" && (joinedSince || vis.current == "join") {
		return true
	}
	return hv == "invited" && m == "invite"
}

// backfilledView is the reader's view of the state before a backfilled
// event stored with it, read with its neighbours on first need (one read
// per page, as visibility.viewAt does for forks); ok is false when the
// state is not known.
func (r *historyRules) backfilledView(ctx context.Context, se *StoredEvent) (UserView, bool) {
	fv, ok := r.s.store.(ForkViews)
	if !ok || len(r.vis.mine) == 0 {
		return UserView{}, false
	}
	if view, ok := r.views[se.Seq]; ok {
		return view, true
	}
	for _, l := range r.loaded {
		if se.Seq >= l[0] && se.Seq <= l[1] {
			return UserView{}, false
		}
	}
	user := id.UserID(*r.vis.mine[0].Event.StateKey())
	from, to := se.Seq-viewBatch, se.Seq+viewBatch
	views, err := fv.UserViews(ctx, r.room, user, from, to)
	if err != nil {
		return UserView{}, false
	}
	if r.views == nil {
		r.views = map[int64]UserView{}
	}
	r.loaded = append(r.loaded, [2]int64{from, to})
	maps.Copy(r.views, views)
	view, ok := r.views[se.Seq]
	return view, ok
}

// seesBackfilled applies the spec's rules to a backfilled event with the
// reader's view of the state before it. Whether the reader joined later
// is read by depth, as for the rest of backfilled history.
func (r *historyRules) seesBackfilled(se *StoredEvent, view UserView) bool {
	hv := view.HistoryVisibility
	switch hv {
	case "world_readable", "shared", "invited", "joined":
	default:
		hv = "shared" // unset or not understood (spec: as shared)
	}
	if hv == "world_readable" {
		return true
	}
	// The membership once the event applies, so that a reader sees their
	// own join.
	m, depth := view.Membership, se.Event.Depth()
	joinedSince := false
	for _, e := range r.vis.mine {
		if e.Event.EventID() == se.Event.EventID() {
			m = e.Event.Membership()
		}
		if e.Event.Depth() >= depth && e.Event.Membership() == "join" {
			joinedSince = true
		}
	}
	if m == "join" {
		return true
	}
	if hv == "shared" && (joinedSince || r.vis.current == "join") {
		return true
	}
	return hv == "invited" && m == "invite"
}

// heldFromCreation reports whether the topologically first event clients
// see of the room is its m.room.create.
func (r *historyRules) heldFromCreation(ctx context.Context) bool {
	if r.complete == nil {
		first, err := r.s.store.HistoryPage(ctx, r.room, topoStart, Forward, 1)
		complete := err == nil && len(first) == 1 && first[0].Event.Type() == auth.TypeCreate
		r.complete = &complete
	}
	return *r.complete
}
