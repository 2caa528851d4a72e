package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// draft is what a client asks for; buildEvent turns it into an event.
type draft struct {
	Sender   id.UserID
	Type     string
	StateKey *string
	Content  json.RawMessage
	// Redacts, for an m.room.redaction before room version 11 (from 11 on
	// the caller puts it in Content).
	Redacts id.EventID
}

func (s *Service) builder(d draft) BuildFunc {
	return func(h *Head) (*event.Event, error) { return s.buildEvent(h, d) }
}

// buildEvent builds d against the room's head (server-server API,
// "Auth events selection"; prev_events are the forward extremities and the
// depth one more than theirs), signs it as this server and checks it with
// the auth rules against its auth events, which are current state.
func (s *Service) buildEvent(h *Head, d draft) (*event.Event, error) {
	v := h.Version
	var authRefs []event.Ref
	var authEvents []auth.Event
	for _, k := range auth.SelectAuthEvents(v, d.Type, d.StateKey, d.Sender, d.Content) {
		if ev := h.State[k]; ev != nil {
			authRefs = append(authRefs, ev.Ref())
			authEvents = append(authEvents, ev)
		}
	}
	if v.CreateEventDefinesRoomID {
		// Room version 12: the create event is not listed but the rules
		// read it (auth.CheckAuthEvents).
		if c := h.State.Get(auth.TypeCreate, ""); c != nil {
			authEvents = append(authEvents, c)
		}
	}
	var depth int64
	prev := make([]event.Ref, 0, len(h.Extremities))
	for _, x := range h.Extremities {
		prev = append(prev, x.Ref())
		depth = max(depth, x.Depth())
	}
	p := event.Proto{
		Sender:         d.Sender,
		Type:           d.Type,
		StateKey:       d.StateKey,
		Content:        d.Content,
		RoomID:         h.RoomID,
		PrevEvents:     prev,
		AuthEvents:     authRefs,
		Depth:          depth + 1,
		OriginServerTS: s.nowMS(),
		Redacts:        d.Redacts,
	}
	ev, err := event.Build(v, p, s.cfg.ServerName, s.cfg.Key)
	if err != nil {
		return nil, buildError(err)
	}
	if err := auth.CheckAuthEvents(v, ev, authEvents); err != nil {
		return nil, authError(err)
	}
	return ev, nil
}

// buildError maps event.Build's errors to what a client may change.
func buildError(err error) error {
	switch {
	case errors.Is(err, event.ErrTooLarge):
		return mxerr.TooLarge.Msg("event is larger than 65536 bytes")
	case errors.Is(err, event.ErrInvalidEvent):
		return mxerr.BadJSON.Msgf("invalid event: %v", err)
	}
	// Content that is not canonical JSON of the room version (floats,
	// integers out of range) fails in the parser.
	return mxerr.BadJSON.Msgf("invalid event content: %v", err)
}

// authError turns a rejection into M_FORBIDDEN naming the rule; anything
// else (a missing auth event) is an internal error.
func authError(err error) error {
	var re *auth.RuleError
	if errors.As(err, &re) {
		return mxerr.Forbidden.Msg(re.Reason)
	}
	return fmt.Errorf("auth check: %w", err)
}

// persist is the one persist path: Append, then tell the notifier and the
// federation sender about what committed.
func (s *Service) persist(ctx context.Context, req AppendRequest) ([]Persisted, error) {
	out, err := s.store.Append(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, p := range out {
		if p.Deduplicated {
			continue
		}
		ev := p.Event
		s.notifier.OnNewEvent(ctx, NewEvent{
			RoomID: req.RoomID, EventID: ev.EventID(), Seq: p.Seq, StreamPos: p.StreamPos,
			Type: ev.Type(), StateKey: ev.StateKey(), Membership: ev.Membership(), Sender: ev.Sender(),
		})
		s.outbound.SendEvent(ctx, req.RoomID, ev)
	}
	return out, nil
}

// send persists one event built from d in room, idempotent under txn.
func (s *Service) send(ctx context.Context, room id.RoomID, txn *TxnKey, d draft) (id.EventID, error) {
	out, err := s.persist(ctx, AppendRequest{RoomID: room, Txn: txn, Build: []BuildFunc{s.builder(d)}})
	if err != nil {
		return "", err
	}
	return out[0].EventID, nil
}
