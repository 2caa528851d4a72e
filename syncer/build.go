package syncer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// builder builds one /sync response for the range (since, pos] of the
// global stream.
type builder struct {
	s       *Service
	req     Request
	filter  *Filter
	since   Token
	initial bool
	pos     int64

	// joined are the rooms the user is joined to at pos: the rooms whose
	// commits wake this sync when it waits.
	joined []id.RoomID
}

// roomPlan is what the builder knows of one room before reading it.
type roomPlan struct {
	room       id.RoomID
	membership MembershipChange // the latest change at or below pos
	// full: send the full state before the timeline and check the
	// visibility of every event (initial sync, full_state, a room joined
	// or rejoined within the range); otherwise the user was joined all
	// along and the state section is the delta of the range.
	full bool
}

func (b *builder) build(ctx context.Context) (*Response, error) {
	resp := newResponse()
	sinceTL := b.since.Pos(StreamTimeline)
	resp.NextBatch = b.since.With(StreamTimeline, b.pos).String()

	current, err := b.s.store.Memberships(ctx, b.req.User, b.pos)
	if err != nil {
		return nil, err
	}
	latest := make(map[id.RoomID]MembershipChange, len(current))
	atSince := make(map[id.RoomID]string, len(current))
	order := make([]id.RoomID, 0, len(current))
	for _, c := range current {
		latest[c.RoomID] = c
		atSince[c.RoomID] = c.Membership
		order = append(order, c.RoomID)
	}
	churned := map[id.RoomID]bool{} // a non-join membership within the range
	if !b.initial {
		changes, err := b.s.store.MembershipChanges(ctx, b.req.User, sinceTL, b.pos)
		if err != nil {
			return nil, err
		}
		first := map[id.RoomID]bool{}
		for _, c := range changes {
			if !first[c.RoomID] {
				first[c.RoomID] = true
				atSince[c.RoomID] = c.Prev
			}
			if c.Membership != "join" {
				churned[c.RoomID] = true
			}
		}
	}

	roomFilter := b.filter.RoomFilterOf()
	var quiet []roomPlan // joined all along: read only if active
	var plans []roomPlan
	for _, room := range order {
		m := latest[room]
		if m.Membership == "join" {
			b.joined = append(b.joined, room)
		}
		if !roomFilter.RoomAllowed(room) {
			continue
		}
		changed := m.StreamPos > sinceTL
		switch m.Membership {
		case "join":
			full := b.initial || b.req.FullState || atSince[room] != "join" || churned[room]
			if full {
				plans = append(plans, roomPlan{room: room, membership: m, full: true})
			} else {
				quiet = append(quiet, roomPlan{room: room, membership: m})
			}
		case "invite", "knock":
			if b.initial || changed {
				plans = append(plans, roomPlan{room: room, membership: m})
			}
		case "leave", "ban":
			// Incremental syncs report the rooms left within the range;
			// initial ones list all left rooms only when asked.
			if (!b.initial && changed) || ((b.initial || b.req.FullState) && b.filter.IncludeLeave()) {
				plans = append(plans, roomPlan{room: room, membership: m, full: true})
			}
		}
	}
	if len(quiet) > 0 {
		ids := make([]id.RoomID, len(quiet))
		for i, p := range quiet {
			ids[i] = p.room
		}
		active, err := b.s.store.ActiveRooms(ctx, ids, sinceTL, b.pos)
		if err != nil {
			return nil, err
		}
		for _, p := range quiet {
			if slices.Contains(active, p.room) {
				plans = append(plans, p)
			}
		}
	}

	for _, p := range plans {
		if err := b.addRoom(ctx, resp, p); err != nil {
			return nil, fmt.Errorf("sync room %s: %w", p.room, err)
		}
	}
	r := resp.Rooms
	resp.empty = len(r.Join)+len(r.Invite)+len(r.Leave)+len(r.Knock) == 0
	return resp, nil
}

func (b *builder) addRoom(ctx context.Context, resp *Response, p roomPlan) error {
	switch p.membership.Membership {
	case "invite":
		st, err := b.strippedState(ctx, p)
		if err != nil {
			return err
		}
		resp.Rooms.Invite[p.room] = &InvitedRoom{InviteState: st}
		return nil
	case "knock":
		st, err := b.strippedState(ctx, p)
		if err != nil {
			return err
		}
		resp.Rooms.Knock[p.room] = &KnockedRoom{KnockState: st}
		return nil
	}

	joined := p.membership.Membership == "join"
	upTo := b.pos
	if !joined {
		// A left room's timeline ends with the user's leave.
		upTo = p.membership.StreamPos
	}
	after := b.since.Pos(StreamTimeline)
	evs, limited, err := b.s.store.RoomEventsBetween(ctx, p.room, after, upTo, b.filter.TimelineLimit())
	if err != nil {
		return err
	}
	tl, state, err := b.timelineAndState(ctx, p, evs, joined)
	if err != nil {
		return err
	}
	if len(tl) == 0 && len(state) == 0 && !p.full {
		return nil
	}
	timeline := Timeline{Events: b.render(tl), Limited: limited}
	// prev_batch is a /messages token of the rooms service: the position
	// just before the timeline's first event, paginating backwards.
	switch {
	case len(tl) > 0:
		timeline.PrevBatch = rooms.PositionToken(tl[0].Seq - 1)
	case len(evs) > 0:
		timeline.PrevBatch = rooms.PositionToken(evs[len(evs)-1].Seq)
	}
	if p.full {
		state = b.lazyMembers(state, tl)
	}
	stateList := EventList{Events: b.render(state)}
	if !joined {
		resp.Rooms.Leave[p.room] = &LeftRoom{State: stateList, Timeline: timeline, AccountData: emptyList()}
		return nil
	}
	jr := &JoinedRoom{State: stateList, Timeline: timeline, Ephemeral: emptyList(), AccountData: emptyList()}
	if p.full || hasMember(tl) || hasMember(state) {
		sum, err := b.s.store.RoomSummary(ctx, p.room, b.req.User)
		if err != nil {
			return err
		}
		jr.Summary = RoomSummary{Heroes: sum.Heroes, Joined: &sum.Joined, Invited: &sum.Invited}
	}
	resp.Rooms.Join[p.room] = jr
	return nil
}

// timelineAndState picks the timeline events the user may see and the
// filter lets through, and the state section that goes with them.
func (b *builder) timelineAndState(ctx context.Context, p roomPlan, evs []*rooms.StoredEvent, joined bool) (tl, state []*rooms.StoredEvent, err error) {
	tf := b.filter.TimelineFilter()
	if !p.full {
		// Joined before the range and all through it: every event is
		// visible; the state section is what changed before the timeline.
		for _, se := range evs {
			if tf.Matches(matchView(se)) {
				tl = append(tl, se)
			}
		}
		cut := b.pos + 1
		if len(tl) > 0 {
			cut = tl[0].StreamPos
		}
		if cut-1 > b.since.Pos(StreamTimeline) {
			changes, err := b.s.store.StateChanges(ctx, p.room, b.since.Pos(StreamTimeline), cut-1)
			if err != nil {
				return nil, nil, err
			}
			state = b.filterState(changes)
		}
		if lazy, _ := b.filter.LazyLoadMembers(); lazy && len(tl) > 0 {
			// A lazy-loading client may never have received the member
			// events of the timeline's senders: add them from the state
			// before the timeline. The gap's member changes stay, as the
			// spec requires for limited syncs.
			if state, err = b.addSenderMembers(ctx, p.room, state, tl); err != nil {
				return nil, nil, err
			}
		}
		return tl, state, nil
	}

	// Full state: the state before the first fetched event, walked
	// forward over the fetched events up to the first one shown.
	seq := int64(1 << 62)
	if len(evs) > 0 {
		seq = evs[0].Seq
	}
	before, err := b.s.store.StateBefore(ctx, p.room, seq)
	if err != nil {
		return nil, nil, err
	}
	visible := visibleFlags(b.req.User, before, evs, joined)
	first := len(evs)
	for i, se := range evs {
		if visible[i] && tf.Matches(matchView(se)) {
			if first == len(evs) {
				first = i
			}
			tl = append(tl, se)
		}
	}
	current := before
	for _, se := range evs[:first] {
		if se.Event.IsState() {
			current = current.With(se.Event)
		}
	}
	all := make([]*rooms.StoredEvent, 0, len(current))
	for _, ev := range current {
		all = append(all, &rooms.StoredEvent{Event: ev, RoomID: p.room})
	}
	slices.SortFunc(all, func(a, c *rooms.StoredEvent) int {
		return cmp.Or(cmp.Compare(a.Event.Type(), c.Event.Type()), cmp.Compare(*a.Event.StateKey(), *c.Event.StateKey()))
	})
	return tl, b.filterState(all), nil
}

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
	before, err := b.s.store.StateBefore(ctx, room, tl[0].Seq)
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

// syncEvent is a ClientEvent without room_id, as /sync nests events under
// their room (ClientEventWithoutRoomID): the shallower empty field hides
// the embedded one.
type syncEvent struct {
	rooms.ClientEvent
	RoomID id.RoomID `json:"room_id,omitempty"`
}

// render formats events for the user's device, with the filter's
// event_fields applied.
func (b *builder) render(evs []*rooms.StoredEvent) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(evs))
	viewer := rooms.Viewer{User: b.req.User, Device: b.req.Device}
	var fields []string
	if b.filter != nil {
		fields = b.filter.EventFields
	}
	for _, se := range evs {
		raw, err := json.Marshal(syncEvent{ClientEvent: b.s.format.ClientEvent(se, viewer)})
		if err == nil {
			raw, err = ProjectFields(raw, fields)
		}
		if err != nil {
			// Only a programming error gets here; skip rather than fail
			// the whole sync.
			b.s.logger.Error("render event for sync", "event_id", string(se.Event.EventID()), "error", err.Error())
			continue
		}
		out = append(out, raw)
	}
	return out
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
	for _, t := range strippedTypes {
		add(st.Get(t, ""))
	}
	add(st.Get(auth.TypeMember, string(b.req.User)))
	return out, nil
}

func hasMember(evs []*rooms.StoredEvent) bool {
	for _, se := range evs {
		if se.Event.Type() == auth.TypeMember {
			return true
		}
	}
	return false
}

// matchView is the filter's view of a stored event.
func matchView(se *rooms.StoredEvent) *Event {
	ev := se.Event
	return &Event{
		ID: ev.EventID(), RoomID: se.RoomID, Type: ev.Type(), StateKey: ev.StateKey(),
		Sender: ev.Sender(), StreamPos: se.StreamPos, Seq: se.Seq, Content: ev.Content(),
	}
}
