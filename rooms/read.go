package rooms

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Event returns one event if the user may see it (GET
// /rooms/{roomId}/event/{eventId}); M_NOT_FOUND otherwise, as the spec
// asks, so that a client cannot probe for events it may not see.
func (s *Service) Event(ctx context.Context, user id.UserID, room id.RoomID, eventID id.EventID) (*StoredEvent, error) {
	se, err := s.store.Event(ctx, room, eventID)
	if err != nil {
		return nil, err
	}
	// The whole membership history: a later join shows "shared" history.
	_, vis, err := s.headVisibility(ctx, room, user)
	if err != nil {
		return nil, err
	}
	if !(&historyRules{s: s, room: room, vis: vis}).visible(ctx, se) {
		return nil, mxerr.NotFound.Msg("event not found")
	}
	return se, nil
}

// readableState is the state a user may read (GET /rooms/{roomId}/state…):
// current state for members and world-readable rooms, the state as they
// left it for former members (client-server API, GET state: "If the user
// has left the room then the state is taken from the state of the room
// when they left").
func (s *Service) readableState(ctx context.Context, user id.UserID, room id.RoomID) (State, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return nil, err
	}
	if h.State.Membership(string(user)) == "join" {
		return h.State, nil
	}
	vis, err := s.loadVisibility(ctx, room, user, h.Seq)
	if err != nil {
		return nil, err
	}
	if vis.worldReadable() {
		return h.State, nil
	}
	if n := len(vis.mine); n > 0 {
		last := vis.mine[n-1]
		if m := last.Event.Membership(); m == "leave" || m == "ban" {
			// Only if they had joined: an invite they rejected shows nothing.
			for _, e := range vis.mine {
				if e.Event.Membership() == "join" {
					st, err := s.store.StateBefore(ctx, room, last.Seq)
					if err != nil {
						return nil, err
					}
					return st.With(last.Event), nil
				}
			}
		}
	}
	return nil, mxerr.Forbidden.Msg("you are not a member of this room")
}

// State returns every state event the user may read (GET /rooms/{roomId}/state).
func (s *Service) State(ctx context.Context, user id.UserID, room id.RoomID) ([]*StoredEvent, error) {
	st, err := s.readableState(ctx, user, room)
	if err != nil {
		return nil, err
	}
	out := make([]*StoredEvent, 0, len(st))
	for _, ev := range st {
		out = append(out, &StoredEvent{Event: ev, RoomID: room})
	}
	return out, nil
}

// StateEvent returns one state event's content (GET
// /rooms/{roomId}/state/{eventType}/{stateKey}).
func (s *Service) StateEvent(ctx context.Context, user id.UserID, room id.RoomID, eventType, stateKey string) (*StoredEvent, error) {
	st, err := s.readableState(ctx, user, room)
	if err != nil {
		return nil, err
	}
	ev := st.Get(eventType, stateKey)
	if ev == nil {
		return nil, mxerr.NotFound.Msg("no such state event")
	}
	// The stored form carries unsigned data (prev_content, the redaction).
	se, err := s.store.Event(ctx, room, ev.EventID())
	if errors.Is(err, ErrEventNotFound) {
		// State a room was joined with over federation is stored outside
		// the timeline (outliers, sql/0008), where Event does not look:
		// it is state all the same.
		return &StoredEvent{Event: ev, RoomID: room}, nil
	}
	return se, err
}

// JoinedRooms lists the rooms the user is joined to (GET /joined_rooms).
func (s *Service) JoinedRooms(ctx context.Context, user id.UserID) ([]id.RoomID, error) {
	return s.store.RoomsOf(ctx, user, "join")
}
