package syncer

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// addRoom adds one room to its section of the response, or nothing when a
// room the user was joined to all along has nothing to show.
func (b *builder) addRoom(ctx context.Context, resp *Response, p roomPlan) error {
	switch p.membership.Membership {
	case "invite":
		if ignored, err := b.invitedByIgnored(ctx, p); err != nil || ignored {
			return err
		}
		st, err := b.strippedState(ctx, p)
		if err != nil {
			return err
		}
		b.put(func() { resp.Rooms.Invite[p.room] = &InvitedRoom{InviteState: st} })
		return nil
	case "knock":
		st, err := b.strippedState(ctx, p)
		if err != nil {
			return err
		}
		b.put(func() { resp.Rooms.Knock[p.room] = &KnockedRoom{KnockState: st} })
		return nil
	}

	joined := p.membership.Membership == "join"
	upTo := b.pos
	if !joined {
		// A left room's timeline ends with the user's leave.
		upTo = p.membership.StreamPos
	}
	after := b.since.Pos(StreamTimeline)
	if p.joinedInRange {
		after = 0
	}
	evs, limited, err := b.fetchTimeline(ctx, p.room, after, upTo)
	if err != nil {
		return err
	}
	tl, state, trimmed, err := b.timelineAndState(ctx, p, evs, !limited, joined, upTo)
	if err != nil {
		return err
	}
	limited = limited || trimmed
	if len(tl) == 0 && len(state) == 0 && !p.full {
		return nil
	}
	// Ignored users' messages are left out of what is shown only:
	// prev_batch and the state section still follow the whole timeline.
	timeline := Timeline{Events: b.render(b.dropIgnored(tl)), Limited: limited}
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
	var stateAfter *EventList
	if b.req.UseStateAfter {
		after := stateList
		stateList, stateAfter = emptyList(), &after
	}
	if !joined {
		b.put(func() {
			resp.Rooms.Leave[p.room] = &LeftRoom{State: stateList, StateAfter: stateAfter, Timeline: timeline, AccountData: emptyList()}
		})
		return nil
	}
	jr := &JoinedRoom{State: stateList, StateAfter: stateAfter, Timeline: timeline, Ephemeral: emptyList(), AccountData: emptyList()}
	if p.full || hasMember(tl) || hasMember(state) {
		sum, err := b.roomSummary(ctx, p.room)
		if err != nil {
			return err
		}
		jr.Summary = RoomSummary{Heroes: sum.Heroes, Joined: &sum.Joined, Invited: &sum.Invited}
	}
	b.put(func() { resp.Rooms.Join[p.room] = jr })
	return nil
}

// timelineAndState picks the timeline: the latest events, up to the
// filter's limit, that the user may see and the filter lets through;
// trimmed reports that more such events were left out. It also builds the
// state section that goes with it (state_after with use_state_after),
// from the history of the room's resolved state when the store keeps one.
//
// fetchedAll reports that evs are every event of the range.
func (b *builder) timelineAndState(ctx context.Context, p roomPlan, evs []*rooms.StoredEvent, fetchedAll, joined bool, upTo int64) (tl, state []*rooms.StoredEvent, trimmed bool, err error) {
	tf := b.filter.TimelineFilter()
	limit := b.filter.TimelineLimit()
	hs, resolved := b.s.store.(StateHistoryStore)
	if !p.full {
		// Joined before the range and all through it: every event is
		// visible — but for one built on a branch of a fork where the user
		// was not joined yet, under "joined" or "invited" history; the
		// state section is what changed before the timeline.
		//
		// Events of this server are built on all forward extremities: the
		// state after one is the state before it and itself, whatever
		// forked before. A range of only such events needs neither the
		// views of a forked room nor the history of the resolved state
		// (the common case of a sync woken by a local message reads
		// nothing more than before).
		linear := localOnly(evs, b.req.User.Server())
		var views map[int64]rooms.UserView
		if !linear {
			if views, err = b.forkViews(ctx, p.room, evs); err != nil {
				return nil, nil, false, err
			}
		}
		for _, se := range evs {
			if tf.Matches(matchView(se)) && visibleToMember(b.req.User, se, views) {
				tl = append(tl, se)
			}
		}
		if len(tl) > limit {
			tl, trimmed = tl[len(tl)-limit:], true
		}
		if resolved && linear && fetchedAll && len(tl) == len(evs) {
			state, err := b.linearDelta(ctx, p.room, tl)
			return tl, state, trimmed, err
		}
		if resolved {
			tl, state, cut, err := b.resolvedDelta(ctx, hs, p.room, tl, upTo)
			return tl, state, trimmed || cut, err
		}
		state, err := b.stateDelta(ctx, p.room, tl)
		return tl, state, trimmed, err
	}
	if resolved {
		return b.resolvedFull(ctx, hs, p, evs, joined, upTo)
	}

	// Full state: the state before the first fetched event, walked
	// forward over the fetched events up to the first one shown.
	seq := int64(1 << 62)
	if len(evs) > 0 {
		seq = evs[0].Seq
	}
	before, err := b.s.store.StateBefore(ctx, p.room, seq)
	if err != nil {
		return nil, nil, false, err
	}
	if _, ok := before[auth.StateKey{Type: auth.TypeCreate}]; !ok && len(evs) > 0 && !hasCreate(evs) {
		// No m.room.create before the first event: it is an invite that
		// came over federation before this server held the room's state
		// (the join then brought it). Fill the holes from the state after
		// the fetched events, or the client would never learn of the
		// room's create, power levels or m.room.encryption — and would
		// send in the clear in an encrypted room.
		if before, err = b.fillStateHoles(ctx, p.room, before, evs); err != nil {
			return nil, nil, false, err
		}
	}
	tl, first, trimmed := b.pickShown(before, evs, joined, nil)
	current := maps.Clone(before)
	for _, se := range evs[:first] {
		if ev := se.Event; ev.IsState() {
			current[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
		}
	}
	all := make([]*rooms.StoredEvent, 0, len(current))
	for _, ev := range current {
		all = append(all, &rooms.StoredEvent{Event: ev, RoomID: p.room})
	}
	slices.SortFunc(all, func(a, c *rooms.StoredEvent) int {
		return cmp.Or(cmp.Compare(a.Event.Type(), c.Event.Type()), cmp.Compare(*a.Event.StateKey(), *c.Event.StateKey()))
	})
	return tl, b.filterState(all), trimmed, nil
}

// pickShown picks the timeline of a full sync among the fetched events:
// the latest ones, up to the filter's limit, that the user may see (the
// history visibility walk starts from before, the state before evs[0])
// and the filter lets through. first is the index in evs of the first one
// shown (len(evs) when none); trimmed reports that more were left out.
func (b *builder) pickShown(before rooms.State, evs []*rooms.StoredEvent, joined bool, views map[int64]rooms.UserView) (tl []*rooms.StoredEvent, first int, trimmed bool) {
	tf := b.filter.TimelineFilter()
	limit := b.filter.TimelineLimit()
	visible := visibleFlags(b.req.User, before, evs, joined, views)
	var shown []int
	for i, se := range evs {
		if visible[i] && tf.Matches(matchView(se)) {
			shown = append(shown, i)
		}
	}
	// Only the latest limit of them; the state section then covers
	// everything before the first one shown.
	if len(shown) > limit {
		shown, trimmed = shown[len(shown)-limit:], true
	}
	first = len(evs)
	if len(shown) > 0 {
		first = shown[0]
	}
	for _, i := range shown {
		tl = append(tl, evs[i])
	}
	return tl, first, trimmed
}

// resolvedFull is timelineAndState's full state section from the history
// of the room's resolved state: the visibility walk starts from the state
// at the position before the first fetched event, and the section is
// fullSection of the states before the timeline and at its end.
func (b *builder) resolvedFull(ctx context.Context, hs StateHistoryStore, p roomPlan, evs []*rooms.StoredEvent, joined bool, upTo int64) (tl, state []*rooms.StoredEvent, trimmed bool, err error) {
	fs, err := b.loadFullStates(ctx, hs, p.room, evs, upTo)
	if err != nil {
		return nil, nil, false, err
	}
	var before rooms.State
	if len(evs) > 0 {
		before = fs.at(fs.h.from)
	}
	views, err := b.forkViews(ctx, p.room, evs)
	if err != nil {
		return nil, nil, false, err
	}
	tl, _, trimmed = b.pickShown(before, evs, joined, views)
	end := fs.at(upTo)
	if !b.req.UseStateAfter {
		var cut bool
		tl, cut = cutAtUnresolved(tl, func(k auth.StateKey, se *rooms.StoredEvent) bool {
			return end[k] != nil && end[k].EventID() == se.Event.EventID()
		})
		trimmed = trimmed || cut
	}
	start := end
	if len(tl) > 0 {
		start = fs.at(tl[0].StreamPos - 1)
	}
	st := fullSection(start, end, timelineKeys(tl), b.req.UseStateAfter)
	return tl, b.filterState(sortedState(p.room, st)), trimmed, nil
}

// fillStateHoles adds to before the state after evs for every key that
// before lacks and no event of evs sets: keys are never removed from a
// room's state, so those are keys before should have held.
func (b *builder) fillStateHoles(ctx context.Context, room id.RoomID, before rooms.State, evs []*rooms.StoredEvent) (rooms.State, error) {
	after, err := b.s.store.StateBefore(ctx, room, evs[len(evs)-1].Seq+1)
	if err != nil {
		return nil, err
	}
	set := make(map[auth.StateKey]bool, len(evs))
	for _, se := range evs {
		if ev := se.Event; ev.IsState() {
			set[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = true
		}
	}
	filled := maps.Clone(before)
	for k, ev := range after {
		if _, ok := filled[k]; !ok && !set[k] {
			filled[k] = ev
		}
	}
	return filled, nil
}

// hasCreate reports whether evs hold the room's m.room.create: then the
// state before them is empty by right, with no holes to fill (without this
// check, the initial sync of every young room read its state twice).
func hasCreate(evs []*rooms.StoredEvent) bool {
	for _, se := range evs {
		if se.Event.Type() == auth.TypeCreate && se.Event.IsState() {
			return true
		}
	}
	return false
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

// fetchTimeline reads the latest events of the room in (after, upTo],
// oldest first: enough of them for the filter's limit of events that pass
// the timeline filter, reading at most MaxTimelineLimit events when the
// filter is selective. limited reports that older events of the range
// were not read.
func (b *builder) fetchTimeline(ctx context.Context, room id.RoomID, after, upTo int64) ([]*rooms.StoredEvent, bool, error) {
	limit := b.filter.TimelineLimit()
	tf := b.filter.TimelineFilter()
	var out []*rooms.StoredEvent
	matched := 0
	for {
		batch, more, err := b.roomEventsBetween(ctx, room, after, upTo, limit)
		if err != nil {
			return nil, false, err
		}
		for _, se := range batch {
			if tf.Matches(matchView(se)) {
				matched++
			}
		}
		out = append(batch, out...)
		if !more || len(batch) == 0 {
			return out, false, nil
		}
		if tf == nil || matched >= limit || len(out) >= MaxTimelineLimit {
			return out, true, nil
		}
		upTo = batch[0].StreamPos - 1
	}
}

// stateDelta is the state section of a room the user was joined to all
// along: the state that changed between since and the timeline's start
// (the end of the range when the timeline is empty).
func (b *builder) stateDelta(ctx context.Context, room id.RoomID, tl []*rooms.StoredEvent) ([]*rooms.StoredEvent, error) {
	since := b.since.Pos(StreamTimeline)
	cut := b.pos + 1
	if len(tl) > 0 {
		cut = tl[0].StreamPos
	}
	var state []*rooms.StoredEvent
	if cut-1 > since {
		changes, err := b.s.store.StateChanges(ctx, room, since, cut-1)
		if err != nil {
			return nil, err
		}
		state = b.filterState(changes)
	}
	if lazy, _ := b.filter.LazyLoadMembers(); lazy && len(tl) > 0 {
		// A lazy-loading client may never have received the member events
		// of the timeline's senders: add them from the state before the
		// timeline. The gap's member changes stay, as the spec requires
		// for limited syncs.
		return b.addSenderMembers(ctx, room, state, tl)
	}
	return state, nil
}
