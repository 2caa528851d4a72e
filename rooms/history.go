package rooms

import (
	"context"
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

// Messages pages through a room's timeline (GET /rooms/{roomId}/messages),
// skipping events the filter or the history visibility rules hide.
func (s *Service) Messages(ctx context.Context, user id.UserID, room id.RoomID, req MessagesRequest) (*Page, error) {
	h, vis, err := s.readerVisibility(ctx, user, room)
	if err != nil {
		return nil, err
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
	pos := h.Seq
	if dir == Forward {
		pos = 0
	}
	if req.From != "" {
		if pos, err = s.position(ctx, room, req.From); err != nil {
			return nil, err
		}
	}
	stop := int64(-1)
	if req.To != "" {
		if stop, err = s.position(ctx, room, req.To); err != nil {
			return nil, err
		}
	}
	page := &Page{Start: PositionToken(pos)}
	scanned, more, backfilled := 0, true, false
	for len(page.Chunk) < limit && scanned < maxScan && more {
		want := min(max(limit*2, 20), maxScan-scanned)
		batch, err := s.store.Timeline(ctx, room, pos, dir, want)
		if err != nil {
			return nil, err
		}
		more = len(batch) == want
		for _, se := range batch {
			if stop >= 0 && ((dir == Backward && se.Seq <= stop) || (dir == Forward && se.Seq > stop)) {
				more = false
				break
			}
			scanned++
			if dir == Backward {
				pos = se.Seq - 1
			} else {
				pos = se.Seq
			}
			if vis.canSee(se.Seq) && f.Matches(se) {
				page.Chunk = append(page.Chunk, se)
				if len(page.Chunk) == limit {
					break
				}
			}
		}
		// At the start of what this server holds of a room joined over
		// federation, the history before it is asked of other servers,
		// once per page (backfill.go).
		if !more && dir == Backward && stop < 0 && !backfilled && len(page.Chunk) < limit {
			backfilled = true
			more = s.backfillBefore(ctx, h)
		}
	}
	if more || len(page.Chunk) == limit {
		page.End = PositionToken(pos)
	}
	if f.LazyLoadMembers {
		page.State = membersOf(h.State, page.Chunk, room)
	}
	return page, nil
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
	before, err := s.Messages(ctx, user, room, MessagesRequest{From: PositionToken(se.Seq - 1), Dir: Backward, Limit: max(limit/2, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	after, err := s.Messages(ctx, user, room, MessagesRequest{From: PositionToken(se.Seq), Dir: Forward, Limit: max(limit-limit/2, 1), Filter: f})
	if err != nil {
		return nil, err
	}
	out := &EventContext{Event: se, Before: before.Chunk, After: after.Chunk,
		Start: PositionToken(se.Seq - 1), End: PositionToken(se.Seq)}
	if n := len(before.Chunk); n > 0 {
		out.Start = PositionToken(before.Chunk[n-1].Seq - 1)
	}
	last := se.Seq
	if n := len(after.Chunk); n > 0 {
		last = after.Chunk[n-1].Seq
		out.End = PositionToken(last)
	}
	// The state at the last event returned.
	st, err := s.store.StateBefore(ctx, room, last+1)
	if err != nil {
		return nil, err
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
	if !vis.canSee(se.Seq) {
		return nil, mxerr.NotFound.Msg("no visible event near that time")
	}
	return se, nil
}
