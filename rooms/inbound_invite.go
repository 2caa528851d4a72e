package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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
	return in.storeRemoteMembershipLocked(ctx, ev)
}

// storeRemoteMembershipLocked is StoreRemoteMembership with the room's
// lock held and the stripped state already in ev.
func (in *Inbound) storeRemoteMembershipLocked(ctx context.Context, ev *event.Event) error {
	room := ev.RoomID()
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

// endsOutOfBandMembership says whether ev, received for a room this
// server is not in (head h), rescinds an invite or refuses a knock of one
// of our users that we hold out of band: a leave or ban of that user
// whose auth events name the invite or knock (the auth rules make the
// target's current membership an auth event of any change of it), so
// that a server that does not know the invite cannot end it.
func (in *Inbound) endsOutOfBandMembership(h *Head, ev *event.Event) bool {
	sk := ev.StateKey()
	if ev.Type() != auth.TypeMember || sk == nil {
		return false
	}
	target, err := id.ParseUserID(*sk)
	if err != nil || target.Server() != in.s.cfg.ServerName {
		return false
	}
	if m := ev.Membership(); m != "leave" && m != "ban" {
		return false
	}
	cur := h.State.Get(auth.TypeMember, *sk)
	if cur == nil || (cur.Membership() != "invite" && cur.Membership() != "knock") {
		return false
	}
	return slices.Contains(ev.AuthEventIDs(), cur.EventID())
}

// receiveOutOfBand stores a rescinded invite or refused knock (see
// endsOutOfBandMembership) once its signatures verify, as the invite was
// stored: the user's /sync then shows the room left.
func (in *Inbound) receiveOutOfBand(ctx context.Context, origin id.ServerName, ev *event.Event) error {
	if in.deps.Keys == nil {
		return fmt.Errorf("%w: federation is not enabled", ErrPDUDropped)
	}
	verified, redacted, err := event.VerifyOrRedact(ctx, ev, in.deps.Keys)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPDUDropped, err)
	}
	if redacted {
		return fmt.Errorf("%w: the content hash does not match", ErrPDUDropped)
	}
	in.log.InfoContext(ctx, "invite or knock ended by the room", "event_id", ev.EventID(),
		"room_id", ev.RoomID(), "user_id", *ev.StateKey(), "membership", ev.Membership(), "origin", origin)
	return in.storeRemoteMembershipLocked(ctx, verified)
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
