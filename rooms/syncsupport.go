package rooms

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

// VisibleTo keeps the events of room that user may see under the history
// visibility rules, in order. The sync engine filters timelines with it.
func (s *Service) VisibleTo(ctx context.Context, user id.UserID, room id.RoomID, evs []*StoredEvent) ([]*StoredEvent, error) {
	if len(evs) == 0 {
		return evs, nil
	}
	_, vis, err := s.headVisibility(ctx, room, user)
	if err != nil {
		return nil, err
	}
	return vis.filterVisible(evs), nil
}

// StrippedEvent is a stripped state event (client-server API, "Stripped
// state"): what an invitee or knocker may see of a room.
type StrippedEvent struct {
	Content  json.RawMessage `json:"content"`
	Sender   id.UserID       `json:"sender"`
	StateKey string          `json:"state_key"`
	Type     string          `json:"type"`
}

// strippedTypes are the state events the spec recommends sharing.
var strippedTypes = []string{
	auth.TypeCreate, auth.TypeJoinRules, "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.canonical_alias", "m.room.encryption",
}

// StrippedState returns the room's stripped state for user's invite or
// knock, with user's own member event (invite_state / knock_state).
func (s *Service) StrippedState(ctx context.Context, room id.RoomID, user id.UserID) ([]StrippedEvent, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return nil, err
	}
	var out []StrippedEvent
	add := func(typ, key string) {
		if ev := h.State.Get(typ, key); ev != nil {
			out = append(out, StrippedEvent{Content: ev.Content(), Sender: ev.Sender(), StateKey: key, Type: typ})
		}
	}
	for _, typ := range strippedTypes {
		add(typ, "")
	}
	add(auth.TypeMember, string(user))
	return out, nil
}
