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

// StateDelta is one change of a room's resolved current state: at stream
// position StreamPos, the event in force for Key went from PrevSeq to Seq
// (per-room sequence numbers; 0 = the key absent).
type StateDelta struct {
	Key          auth.StateKey
	StreamPos    int64
	Seq, PrevSeq int64
}

// StateHistoryStore reads the history of rooms' resolved current state
// (sql/0016). When prev_events fork, state resolution may keep an older
// event for a key, or change a key no new event names: the events' order
// no longer tells what state was in force at a stream position, this
// history does. A Store that also implements it gets the sync engine's
// state sections from it; without it they follow the events, which is
// right for rooms that never forked.
type StateHistoryStore interface {
	// StateDeltas returns the changes of room's current state at stream
	// positions above after, in the order they happened.
	StateDeltas(ctx context.Context, room id.RoomID, after int64) ([]StateDelta, error)
	// StateEvents returns room's events at seqs, wherever they sit in the
	// graph (state a room was joined with is outliers), by seq.
	StateEvents(ctx context.Context, room id.RoomID, seqs []int64) (map[int64]*rooms.StoredEvent, error)
}

// stateHistory is the changes of one room's state after position from,
// per key, in order.
type stateHistory struct {
	from  int64
	byKey map[auth.StateKey][]StateDelta
}

func newStateHistory(from int64, ds []StateDelta) *stateHistory {
	h := &stateHistory{from: from, byKey: make(map[auth.StateKey][]StateDelta)}
	for _, d := range ds {
		if d.StreamPos > from {
			h.byKey[d.Key] = append(h.byKey[d.Key], d)
		}
	}
	return h
}

// seqAt is the event in force for k at position p (p >= h.from); changed
// is false when k did not change after h.from, and then seq says nothing.
func (h *stateHistory) seqAt(k auth.StateKey, p int64) (seq int64, changed bool) {
	ds := h.byKey[k]
	if len(ds) == 0 {
		return 0, false
	}
	seq = ds[0].PrevSeq
	for _, d := range ds {
		if d.StreamPos > p {
			break
		}
		seq = d.Seq
	}
	return seq, true
}

// sectionSeqs picks, for an incremental sync from since (= h.from) whose
// timeline runs from start to end (the state at start is the state before
// the timeline's first event), the events of the state section:
//
//   - stateAfter (spec v1.16 use_state_after): the keys whose event at end
//     differs from the one at since, with the one at end;
//   - otherwise the section precedes the timeline, whose state events the
//     client applies after it. A key the timeline sets gets the event at
//     start when that changed since since; a key it does not set gets the
//     event at end when that changed since since — resolution after a fork
//     (or an event the timeline filter or the history visibility left out)
//     changed it with no timeline event to tell the client.
//
// A key the timeline sets whose last event there is not the one in force
// at end (a fork resolved the "other" way) cannot be told without
// state_after: the client applies the timeline's event last. Synapse has
// the same limit (its _calculate_state); use_state_after (MSC4222) is the
// spec's answer. A key that left the state (Seq 0) cannot be told either:
// the sections only carry events.
func sectionSeqs(h *stateHistory, start, end int64, inTimeline map[auth.StateKey]bool, stateAfter bool) map[auth.StateKey]int64 {
	out := map[auth.StateKey]int64{}
	for k, ds := range h.byKey {
		atSince := ds[0].PrevSeq
		atEnd, _ := h.seqAt(k, end)
		pick := atEnd
		if !stateAfter && inTimeline[k] {
			pick, _ = h.seqAt(k, start)
		}
		if pick != atSince && pick != 0 {
			out[k] = pick
		}
	}
	return out
}

// stateAt returns the state at position p (>= h.from) from cur, the state
// after every change of h, and the events of h's keys by seq.
func stateAt(h *stateHistory, cur rooms.State, evs map[int64]*rooms.StoredEvent, p int64) rooms.State {
	out := maps.Clone(cur)
	if out == nil {
		out = rooms.State{}
	}
	for k := range h.byKey {
		seq, _ := h.seqAt(k, p)
		if se := evs[seq]; seq != 0 && se != nil {
			out[k] = se.Event
		} else {
			delete(out, k)
		}
	}
	return out
}

// seqsOf lists the events every position of h may need.
func (h *stateHistory) seqs() []int64 {
	var out []int64
	for _, ds := range h.byKey {
		for _, d := range ds {
			if d.PrevSeq != 0 {
				out = append(out, d.PrevSeq)
			}
			if d.Seq != 0 {
				out = append(out, d.Seq)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// timelineKeys are the state keys the timeline's events set.
func timelineKeys(tl []*rooms.StoredEvent) map[auth.StateKey]bool {
	out := map[auth.StateKey]bool{}
	for _, se := range tl {
		if ev := se.Event; ev.IsState() {
			out[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = true
		}
	}
	return out
}

// sortedState lists a state in (type, state key) order.
func sortedState(room id.RoomID, st rooms.State) []*rooms.StoredEvent {
	all := make([]*rooms.StoredEvent, 0, len(st))
	for _, ev := range st {
		all = append(all, &rooms.StoredEvent{Event: ev, RoomID: room})
	}
	slices.SortFunc(all, func(a, c *rooms.StoredEvent) int {
		return cmp.Or(cmp.Compare(a.Event.Type(), c.Event.Type()), cmp.Compare(*a.Event.StateKey(), *c.Event.StateKey()))
	})
	return all
}

// cutAtUnresolved makes a timeline a client without state_after can apply:
// it drops the timeline up to and including the latest state event that
// is the last of its key in the timeline but not the event in force at
// its end (inForce says which are). A client applies the timeline's state
// events after the state section, so such an event would stay in its
// state while resolution after a fork picked another; without it, the
// state section carries the right one, and the timeline is limited: the
// client pages back over the dropped events as history (prev_batch).
// Synapse sends such a timeline as it is and the client ends wrong; the
// spec's answer is state_after (MSC4222), which needs no cut.
func cutAtUnresolved(tl []*rooms.StoredEvent, inForce func(k auth.StateKey, se *rooms.StoredEvent) bool) ([]*rooms.StoredEvent, bool) {
	seen := map[auth.StateKey]bool{}
	for i := len(tl) - 1; i >= 0; i-- {
		ev := tl[i].Event
		if !ev.IsState() {
			continue
		}
		k := auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}
		if seen[k] {
			continue
		}
		seen[k] = true
		if !inForce(k, tl[i]) {
			return tl[i+1:], true
		}
	}
	return tl, false
}

// localOnly reports whether every event of evs is of server (the syncing
// user's, this one).
func localOnly(evs []*rooms.StoredEvent, server id.ServerName) bool {
	for _, se := range evs {
		if se.Event.Sender().Server() != server {
			return false
		}
	}
	return true
}

// linearDelta is the state section of a room the user was joined to all
// along when the timeline is every event of the range and each was built
// on all forward extremities (timelineAndState): nothing changed outside
// the timeline. state_after is then the timeline's state events, the last
// of each key; state is empty. Both get the senders' member events for a
// lazy-loading filter.
func (b *builder) linearDelta(ctx context.Context, room id.RoomID, tl []*rooms.StoredEvent) ([]*rooms.StoredEvent, error) {
	var state []*rooms.StoredEvent
	if b.req.UseStateAfter {
		st := rooms.State{}
		for _, se := range tl {
			if ev := se.Event; ev.IsState() {
				st[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
			}
		}
		state = b.filterState(sortedState(room, st))
	}
	if lazy, _ := b.filter.LazyLoadMembers(); lazy && len(tl) > 0 {
		return b.addSenderMembers(ctx, room, state, tl)
	}
	return state, nil
}

// resolvedDelta is the state section of a room the user was joined to all
// along, from the history of its resolved state (sectionSeqs), with the
// member events of the timeline's senders for a lazy-loading filter. It
// returns the timeline too, cut (cutAtUnresolved) when a client without
// state_after could not apply it.
func (b *builder) resolvedDelta(ctx context.Context, hs StateHistoryStore, room id.RoomID, tl []*rooms.StoredEvent, upTo int64) ([]*rooms.StoredEvent, []*rooms.StoredEvent, bool, error) {
	since := b.since.Pos(StreamTimeline)
	ds, err := hs.StateDeltas(ctx, room, since)
	if err != nil {
		return nil, nil, false, err
	}
	h := newStateHistory(since, ds)
	cut := false
	if !b.req.UseStateAfter {
		tl, cut = cutAtUnresolved(tl, func(k auth.StateKey, se *rooms.StoredEvent) bool {
			s, changed := h.seqAt(k, upTo)
			return changed && s == se.Seq
		})
	}
	state, err := b.resolvedSection(ctx, hs, room, tl, h, upTo)
	return tl, state, cut, err
}

func (b *builder) resolvedSection(ctx context.Context, hs StateHistoryStore, room id.RoomID, tl []*rooms.StoredEvent, h *stateHistory, upTo int64) ([]*rooms.StoredEvent, error) {
	start := upTo
	if len(tl) > 0 {
		start = tl[0].StreamPos - 1
	}
	picked := sectionSeqs(h, start, upTo, timelineKeys(tl), b.req.UseStateAfter)
	seqs := make([]int64, 0, len(picked))
	for _, s := range picked {
		seqs = append(seqs, s)
	}
	evs, err := hs.StateEvents(ctx, room, seqs)
	if err != nil {
		return nil, err
	}
	st := rooms.State{}
	for k, s := range picked {
		if se := evs[s]; se != nil {
			st[k] = se.Event
		}
	}
	state := b.filterState(sortedState(room, st))
	if lazy, _ := b.filter.LazyLoadMembers(); lazy && len(tl) > 0 {
		if b.req.UseStateAfter {
			// The senders' member events as of the end of the timeline:
			// the state the client keeps is the state after it.
			return b.addSenderMembersAt(ctx, hs, room, state, tl, h, upTo)
		}
		return b.addSenderMembers(ctx, room, state, tl)
	}
	return state, nil
}

// addSenderMembersAt adds to a state_after delta the member events of the
// timeline's senders it lacks, as of position at: the current ones rolled
// back over h (which runs from before at to now).
func (b *builder) addSenderMembersAt(ctx context.Context, hs StateHistoryStore, room id.RoomID, state, tl []*rooms.StoredEvent, h *stateHistory, at int64) ([]*rooms.StoredEvent, error) {
	have := map[string]bool{}
	for _, se := range state {
		if se.Event.Type() == auth.TypeMember {
			have[*se.Event.StateKey()] = true
		}
	}
	var keys []auth.StateKey
	var seqs []int64
	for _, se := range tl {
		sender := string(se.Event.Sender())
		if have[sender] {
			continue
		}
		have[sender] = true
		k := auth.StateKey{Type: auth.TypeMember, StateKey: sender}
		if s, changed := h.seqAt(k, at); changed {
			seqs = append(seqs, s)
		} else {
			keys = append(keys, k)
		}
	}
	cur, err := b.s.store.StateEntriesBefore(ctx, room, 1<<62, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if ev := cur[k]; ev != nil {
			state = append(state, &rooms.StoredEvent{Event: ev, RoomID: room})
		}
	}
	evs, err := hs.StateEvents(ctx, room, seqs)
	if err != nil {
		return nil, err
	}
	for _, s := range seqs {
		if se := evs[s]; se != nil && s != 0 {
			state = append(state, &rooms.StoredEvent{Event: se.Event, RoomID: room})
		}
	}
	return state, nil
}

// fullStates gives a full sync the room's resolved state at any position
// from the one before its first fetched event on: the state the
// visibility walk starts from, the state before the timeline's first
// event and the state at the end of the timeline.
type fullStates struct {
	h   *stateHistory
	cur rooms.State
	evs map[int64]*rooms.StoredEvent
}

// loadFullStates reads what fullStates needs: the room's current state
// (unless evs hold its m.room.create: then every key of the state changed
// within the history read) and its history from the position before the
// first fetched event (or upTo when none).
func (b *builder) loadFullStates(ctx context.Context, hs StateHistoryStore, room id.RoomID, evs []*rooms.StoredEvent, upTo int64) (*fullStates, error) {
	from := upTo
	if len(evs) > 0 {
		from = min(evs[0].StreamPos-1, upTo)
	}
	if fs, ok, err := b.readFullStates(ctx, room, from, evs); ok {
		return fs, err
	}
	fs := &fullStates{}
	var err error
	if !hasCreate(evs) {
		// Read before the history: a change committed in between is then
		// in the history, and the current state is right for every key
		// the history does not name.
		if fs.cur, err = b.s.store.StateBefore(ctx, room, 1<<62); err != nil {
			return nil, err
		}
	}
	ds, err := hs.StateDeltas(ctx, room, from)
	if err != nil {
		return nil, err
	}
	fs.h = newStateHistory(from, ds)
	if fs.evs, err = hs.StateEvents(ctx, room, fs.h.seqs()); err != nil {
		return nil, err
	}
	return fs, nil
}

func (fs *fullStates) at(p int64) rooms.State { return stateAt(fs.h, fs.cur, fs.evs, p) }

// fullSection is the full state section: the state at end with
// use_state_after; otherwise the state at start, with the event at end of
// every key the timeline does not set (see sectionSeqs).
func fullSection(start, end rooms.State, inTimeline map[auth.StateKey]bool, stateAfter bool) rooms.State {
	if stateAfter {
		return end
	}
	out := maps.Clone(start)
	for k, ev := range end {
		if !inTimeline[k] {
			out[k] = ev
		}
	}
	for k := range start {
		if !inTimeline[k] && end[k] == nil {
			delete(out, k)
		}
	}
	return out
}
