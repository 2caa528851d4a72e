package rooms

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// StateAt returns the room state before eventID — the state the event was
// authorised against, "prior to considering any state changes induced by
// the requested event" (server-server API, GET /state/{roomId}) — as
// events. ErrEventNotFound when the store holds no state for the event.
func (s *Service) StateAt(ctx context.Context, room id.RoomID, eventID id.EventID) ([]*event.Event, error) {
	st, err := s.store.StateBeforeEvent(ctx, room, eventID)
	if err != nil {
		return nil, err
	}
	out := make([]*event.Event, 0, len(st))
	for _, ev := range st {
		out = append(out, ev)
	}
	sortByDepth(out)
	return out, nil
}

// AuthChain returns every event reachable from `from` through auth_events,
// recursively: the "auth chain" of the server-server API (GET /state,
// /event_auth, send_join answers). An event of `from` is included only
// when another one reaches it. Auth events the store does not hold are
// skipped. The result is ordered by depth, then event id, so that a
// receiver may check it front to back.
func (s *Service) AuthChain(ctx context.Context, room id.RoomID, from []*event.Event) ([]*event.Event, error) {
	seen := map[id.EventID]bool{}
	var frontier []id.EventID
	queue := func(ev *event.Event) {
		for _, a := range ev.AuthEventIDs() {
			if !seen[a] {
				seen[a] = true
				frontier = append(frontier, a)
			}
		}
	}
	// Events of from that others reach need no read: the state of a
	// send_join answer names its own power levels, join rules and create
	// event.
	given := make(map[id.EventID]*event.Event, len(from))
	for _, ev := range from {
		given[ev.EventID()] = ev
	}
	for _, ev := range from {
		queue(ev)
	}
	var out []*event.Event
	// One read per level of the chain: the chain of a room with thousands
	// of members is wide but shallow.
	for len(frontier) > 0 {
		batch := frontier[:0:0]
		var reached []*event.Event
		for _, e := range frontier {
			if ev, ok := given[e]; ok {
				reached = append(reached, ev)
			} else {
				batch = append(batch, e)
			}
		}
		frontier = nil
		if len(batch) > 0 {
			evs, err := s.store.EventsByID(ctx, room, batch)
			if err != nil {
				return nil, err
			}
			for _, se := range evs {
				reached = append(reached, se.Event)
			}
		}
		for _, ev := range reached {
			out = append(out, ev)
			queue(ev)
		}
	}
	sortByDepth(out)
	return out, nil
}

// sortByDepth orders events by depth, then event id.
func sortByDepth(evs []*event.Event) {
	slices.SortFunc(evs, func(a, b *event.Event) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return cmp.Compare(a.EventID(), b.EventID())
	})
}

func eventIDs(evs []*event.Event) []id.EventID {
	out := make([]id.EventID, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventID()
	}
	return out
}

// errNotInRoom is what a server that has no joined member in a room gets
// for any read of it (server-server API: "403 The requesting host is not
// in the room").
var errNotInRoom = mxerr.Forbidden.Msg("your server is not in this room")

// ServerInRoom reports whether server has a joined member in the room's
// current state. An unknown room is one the server is not in.
func (s *Service) ServerInRoom(ctx context.Context, server id.ServerName, room id.RoomID) (bool, error) {
	h, err := s.store.Head(ctx, room)
	if errors.Is(err, ErrRoomNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return serverJoined(h.State, server), nil
}

// serverJoined reports whether a user of server is joined in st.
func serverJoined(st State, server id.ServerName) bool {
	for k, ev := range st {
		if k.Type == auth.TypeMember && id.UserID(k.StateKey).Server() == server && ev.Membership() == "join" {
			return true
		}
	}
	return false
}

// requireServerInRoom returns errNotInRoom unless server is in the room.
func (s *Service) requireServerInRoom(ctx context.Context, server id.ServerName, room id.RoomID) error {
	in, err := s.ServerInRoom(ctx, server, room)
	if err != nil {
		return err
	}
	if !in {
		return errNotInRoom
	}
	return nil
}

// ServeEvent returns one event to another server (GET
// /_matrix/federation/v1/event/{eventId}): redacted when the history
// visibility rules hide it from every user of that server.
func (s *Service) ServeEvent(ctx context.Context, origin id.ServerName, eventID id.EventID) (*event.Event, error) {
	room, err := s.store.EventRoom(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, err
	}
	evs, err := s.store.EventsByID(ctx, room, []id.EventID{eventID})
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrEventNotFound
	}
	out, err := s.forServer(ctx, origin, room, []*event.Event{evs[0].Event})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ServeState returns the state before an event and its auth chain (GET
// /_matrix/federation/v1/state/{roomId}?event_id=).
func (s *Service) ServeState(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []*event.Event, err error) {
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, nil, err
	}
	if state, err = s.StateAt(ctx, room, eventID); err != nil {
		return nil, nil, err
	}
	if authChain, err = s.AuthChain(ctx, room, state); err != nil {
		return nil, nil, err
	}
	return state, authChain, nil
}

// ServeStateIDs is ServeState with event ids (GET
// /_matrix/federation/v1/state_ids/{roomId}?event_id=).
func (s *Service) ServeStateIDs(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []id.EventID, err error) {
	st, chain, err := s.ServeState(ctx, origin, room, eventID)
	if err != nil {
		return nil, nil, err
	}
	return eventIDs(st), eventIDs(chain), nil
}

// ServeEventAuth returns the auth chain of one event (GET
// /_matrix/federation/v1/event_auth/{roomId}/{eventId}).
func (s *Service) ServeEventAuth(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) ([]*event.Event, error) {
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, err
	}
	evs, err := s.store.EventsByID(ctx, room, []id.EventID{eventID})
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, ErrEventNotFound
	}
	return s.AuthChain(ctx, room, []*event.Event{evs[0].Event})
}

// ServeTimestampToEvent returns the event of the room closest to ts in
// dir (GET /_matrix/federation/v1/timestamp_to_event/{roomId}).
func (s *Service) ServeTimestampToEvent(ctx context.Context, origin id.ServerName, room id.RoomID, ts int64, dir Direction) (*event.Event, error) {
	if err := s.requireServerInRoom(ctx, origin, room); err != nil {
		return nil, err
	}
	if dir != Forward {
		dir = Backward
	}
	se, err := s.store.EventAtTime(ctx, room, ts, dir)
	if err != nil {
		return nil, err
	}
	return se.Event, nil
}
