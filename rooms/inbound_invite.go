package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
)

// Memberships of local users in rooms this server is not in: an invite
// from another server, a knock through one, and the leave that rejects or
// retracts either (client-server API, "Room membership": the invitee sees
// the invite in /sync's invite section with the room's stripped state).
//
// The event goes into the room's row as a timeline event on top of
// whatever state the server holds of the room — nothing for a room it
// never joined, whose row is created — without becoming a forward
// extremity, since its prev_events are not known. Its stripped state
// travels in the event's unsigned section (invite_room_state or
// knock_room_state, as the spec's invite and knock events carry it;
// unsigned is outside hashes and signatures), where /sync reads it.

var _ InviteStore = (*Inbound)(nil)

// StoreRemoteMembership implements InviteStore.
func (in *Inbound) StoreRemoteMembership(ctx context.Context, ev *event.Event, strippedState []json.RawMessage) error {
	if ev.Type() != auth.TypeMember || ev.StateKey() == nil {
		return fmt.Errorf("%w: %s is not a membership event", ErrPDUDropped, ev.EventID())
	}
	room := ev.RoomID()
	if len(strippedState) > 0 {
		key := "invite_room_state"
		if ev.Membership() == "knock" {
			key = "knock_room_state"
		}
		withState, err := withUnsigned(ev, key, strippedState)
		if err != nil {
			in.log.InfoContext(ctx, "stripped state left out", "event_id", ev.EventID(), "error", err)
		} else {
			ev = withState
		}
	}
	unlock, err := in.lockRoom(ctx, room)
	if err != nil {
		return err
	}
	defer unlock()
	version := ev.Version()
	if err := in.store.StoreOutliers(ctx, room, &version, nil); err != nil {
		return fmt.Errorf("room of %s: %w", ev.EventID(), err)
	}
	p, err := in.store.AppendRemote(ctx, room, ev, func(h *Head) (*RemoteDecision, error) {
		if cur := h.State.Get(auth.TypeMember, *ev.StateKey()); cur != nil && cur.EventID() == ev.EventID() {
			return nil, errAlreadyImported
		}
		return &RemoteDecision{StateBefore: h.State, CurrentState: h.State.With(ev), Extremities: h.Extremities}, nil
	})
	if errors.Is(err, errAlreadyImported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", ev.EventID(), err)
	}
	in.s.notifier.OnNewEvent(ctx, NewEvent{
		RoomID: room, EventID: ev.EventID(), Seq: p.Seq, StreamPos: p.StreamPos,
		Type: ev.Type(), StateKey: ev.StateKey(), Membership: ev.Membership(), Sender: ev.Sender(),
	})
	return nil
}

// RemoteMembership implements InviteStore: user's current membership
// event in room with the stripped state it carries, when the room is one
// this server is not in (no local user joined) or the event carries
// stripped state. nil when there is none.
func (in *Inbound) RemoteMembership(ctx context.Context, room id.RoomID, user id.UserID) (*event.Event, []json.RawMessage, error) {
	h, err := in.s.store.Head(ctx, room)
	if errors.Is(err, ErrRoomNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	ev := h.State.Get(auth.TypeMember, string(user))
	if ev == nil {
		return nil, nil, nil
	}
	stripped := StrippedStateOf(ev)
	if stripped == nil && serverInRoom(h.State, in.s.cfg.ServerName) {
		return nil, nil, nil
	}
	return ev, stripped, nil
}

// StrippedStateOf returns the stripped state an invite or knock received
// from another server carries in unsigned (invite_room_state or
// knock_room_state), nil when none.
func StrippedStateOf(ev *event.Event) []json.RawMessage {
	var u struct {
		Invite []json.RawMessage `json:"invite_room_state"`
		Knock  []json.RawMessage `json:"knock_room_state"`
	}
	raw := ev.Unsigned()
	if raw == nil || json.Unmarshal(raw, &u) != nil {
		return nil
	}
	if u.Invite != nil {
		return u.Invite
	}
	return u.Knock
}

// withUnsigned returns ev with unsigned[key] = list.
func withUnsigned(ev *event.Event, key string, list []json.RawMessage) (*event.Event, error) {
	elems := make([]canonicaljson.Value, 0, len(list))
	for _, raw := range list {
		v, err := canonicaljson.ParseLenient(raw)
		if err != nil {
			return nil, fmt.Errorf("stripped state event: %w", err)
		}
		elems = append(elems, v)
	}
	obj := ev.JSON()
	unsigned, ok := obj.Get("unsigned")
	if !ok {
		unsigned = canonicaljson.ObjectValue()
	}
	obj = obj.With("unsigned", unsigned.With(key, canonicaljson.ArrayValue(elems...)))
	return event.Parse(ev.Version(), canonicaljson.Encode(obj))
}
