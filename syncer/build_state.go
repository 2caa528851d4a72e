package syncer

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// filterState applies the state filter.
func (b *builder) filterState(evs []*rooms.StoredEvent) []*rooms.StoredEvent {
	sf := b.filter.StateFilter()
	if sf == nil {
		return evs
	}
	out := evs[:0:0]
	for _, se := range evs {
		if sf.Matches(matchView(se)) {
			out = append(out, se)
		}
	}
	return out
}

// lazyMembers keeps, when the filter asks for lazy-loading, only the
// member events of the timeline's senders and the user's own in a full
// state section (spec "Lazy-loading room members"). Redundant
// members are sent again: this server does not track what each device
// has already seen, which the spec allows.
func (b *builder) lazyMembers(state, tl []*rooms.StoredEvent) []*rooms.StoredEvent {
	lazy, _ := b.filter.LazyLoadMembers()
	if !lazy {
		return state
	}
	need := map[string]bool{string(b.req.User): true}
	for _, se := range tl {
		need[string(se.Event.Sender())] = true
	}
	out := state[:0:0]
	for _, se := range state {
		ev := se.Event
		if ev.Type() == auth.TypeMember && !need[*ev.StateKey()] {
			continue
		}
		out = append(out, se)
	}
	return out
}

// addSenderMembers adds to a state delta the member events, as of the
// start of the timeline, of the timeline's senders it lacks.
func (b *builder) addSenderMembers(ctx context.Context, room id.RoomID, state, tl []*rooms.StoredEvent) ([]*rooms.StoredEvent, error) {
	have := map[string]bool{}
	for _, se := range state {
		if se.Event.Type() == auth.TypeMember {
			have[*se.Event.StateKey()] = true
		}
	}
	var missing []string
	for _, se := range tl {
		if sender := string(se.Event.Sender()); !have[sender] {
			have[sender] = true
			missing = append(missing, sender)
		}
	}
	if len(missing) == 0 {
		return state, nil
	}
	// Only the senders' keys: reading the whole state before the
	// timeline made every member's sync cost O(room state), and a message
	// to G members O(G²) (issue #9, docs/performance.md).
	keys := make([]auth.StateKey, len(missing))
	for i, u := range missing {
		keys[i] = auth.StateKey{Type: auth.TypeMember, StateKey: u}
	}
	before, err := b.s.store.StateEntriesBefore(ctx, room, tl[0].Seq, keys)
	if err != nil {
		return nil, err
	}
	for _, u := range missing {
		if ev := before.Get(auth.TypeMember, u); ev != nil {
			state = append(state, &rooms.StoredEvent{Event: ev, RoomID: room})
		}
	}
	return state, nil
}

// strippedTypes are the state events an invited or knocking user sees
// (spec client-server-api "Stripped state").
var strippedTypes = []string{
	"m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
	"m.room.canonical_alias", "m.room.encryption", "m.room.topic",
}

// strippedState is the invite_state / knock_state of a room: the state
// after the user's invite or knock, stripped, with that membership event.
func (b *builder) strippedState(ctx context.Context, p roomPlan) (EventList, error) {
	st, err := b.s.store.StateBefore(ctx, p.room, p.membership.Seq+1)
	if err != nil {
		return EventList{}, err
	}
	out := emptyList()
	add := func(ev *event.Event) {
		if ev == nil {
			return
		}
		raw, err := json.Marshal(struct {
			Type     string          `json:"type"`
			StateKey string          `json:"state_key"`
			Content  json.RawMessage `json:"content"`
			Sender   id.UserID       `json:"sender"`
		}{ev.Type(), *ev.StateKey(), ev.Content(), ev.Sender()})
		if err == nil {
			out.Events = append(out.Events, raw)
		}
	}
	member := st.Get(auth.TypeMember, string(b.req.User))
	if st.Get(auth.TypeCreate, "") == nil && member != nil {
		// A room this server is not in: the invite or knock came from
		// another server with the room's stripped state (rooms/inbound_invite.go).
		if remote := rooms.StrippedStateOf(member); remote != nil {
			out.Events = append(out.Events, remote...)
		}
	}
	for _, t := range strippedTypes {
		add(st.Get(t, ""))
	}
	add(member)
	return out, nil
}
