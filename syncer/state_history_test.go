package syncer

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

var (
	keyPL    = auth.StateKey{Type: "m.room.power_levels"}
	keyName  = auth.StateKey{Type: "m.room.name"}
	keyTopic = auth.StateKey{Type: "m.room.topic"}
	keyBob   = auth.StateKey{Type: auth.TypeMember, StateKey: "@bob:x"}
)

// stateEvents builds state events of keys, one per seq, with stream
// position = seq.
func stateEvents(t *testing.T, seqs map[int64]auth.StateKey) map[int64]*rooms.StoredEvent {
	t.Helper()
	key, err := signing.Generate("ed25519:t")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := roomversion.Lookup("10")
	out := map[int64]*rooms.StoredEvent{}
	for seq, k := range seqs {
		content := json.RawMessage(fmt.Sprintf(`{"n":%d}`, seq))
		if k.Type == auth.TypeMember {
			content = json.RawMessage(`{"membership":"join"}`)
		}
		ev, err := event.Build(v, event.Proto{Sender: "@alice:x", RoomID: "!r:x", Type: k.Type, StateKey: &k.StateKey,
			Content: content, Depth: seq, OriginServerTS: seq}, "x", key)
		if err != nil {
			t.Fatal(err)
		}
		out[seq] = &rooms.StoredEvent{Event: ev, RoomID: "!r:x", Seq: seq, StreamPos: seq}
	}
	return out
}

func TestSectionSeqsFollowTheResolvedState(t *testing.T) {
	// since = 10. PL: 3 at since; the timeline (from 20) sets 21, then a
	// fork's resolution at 22 goes back to 3's rival 5. Name: changed in
	// the gap (15) and again, without a timeline event, at 23. Topic:
	// changed at 16 and back at 24 (nothing to tell). Bob: set at 12.
	ds := []StateDelta{
		{Key: keyBob, StreamPos: 12, Seq: 12, PrevSeq: 0},
		{Key: keyName, StreamPos: 15, Seq: 15, PrevSeq: 4},
		{Key: keyTopic, StreamPos: 16, Seq: 16, PrevSeq: 6},
		{Key: keyPL, StreamPos: 21, Seq: 21, PrevSeq: 3},
		{Key: keyPL, StreamPos: 22, Seq: 5, PrevSeq: 21},
		{Key: keyName, StreamPos: 23, Seq: 9, PrevSeq: 15},
		{Key: keyTopic, StreamPos: 24, Seq: 6, PrevSeq: 16},
		{Key: keyTopic, StreamPos: 30, Seq: 30, PrevSeq: 6}, // after the sync's end
	}
	h := newStateHistory(10, ds)
	inTimeline := map[auth.StateKey]bool{keyPL: true}
	for _, c := range []struct {
		name       string
		stateAfter bool
		want       map[auth.StateKey]int64
	}{
		// Before the timeline: bob and the name as of 19; the name again
		// as of the end since the timeline does not set it; PL as of the
		// timeline's start is what the client had.
		{"state", false, map[auth.StateKey]int64{keyBob: 12, keyName: 9}},
		{"state_after", true, map[auth.StateKey]int64{keyBob: 12, keyName: 9, keyPL: 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := sectionSeqs(h, 19, 25, inTimeline, c.stateAfter)
			if !maps.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestStateAtRollsTheCurrentStateBack(t *testing.T) {
	evs := stateEvents(t, map[int64]auth.StateKey{1: keyPL, 2: keyName, 5: keyPL, 7: keyBob, 8: keyName})
	cur := rooms.State{keyPL: evs[5].Event, keyBob: evs[7].Event, keyName: evs[8].Event}
	// From position 4 on: PL 1 → 5 at 5, bob joins at 7, name 2 → 8 at 8.
	h := newStateHistory(4, []StateDelta{
		{Key: keyPL, StreamPos: 5, Seq: 5, PrevSeq: 1},
		{Key: keyBob, StreamPos: 7, Seq: 7},
		{Key: keyName, StreamPos: 8, Seq: 8, PrevSeq: 2},
	})
	ids := func(st rooms.State) map[auth.StateKey]int64 {
		out := map[auth.StateKey]int64{}
		for k, ev := range st {
			for s, se := range evs {
				if se.Event.EventID() == ev.EventID() {
					out[k] = s
				}
			}
		}
		return out
	}
	for p, want := range map[int64]map[auth.StateKey]int64{
		4: {keyPL: 1, keyName: 2},
		6: {keyPL: 5, keyName: 2},
		7: {keyPL: 5, keyName: 2, keyBob: 7},
		9: {keyPL: 5, keyName: 8, keyBob: 7},
	} {
		if got := ids(stateAt(h, cur, evs, p)); !maps.Equal(got, want) {
			t.Errorf("at %d: %v, want %v", p, got, want)
		}
	}
	if got, want := h.seqs(), []int64{1, 2, 5, 7, 8}; !slices.Equal(got, want) {
		t.Errorf("seqs %v, want %v", got, want)
	}
}

func TestCutAtUnresolvedDropsWhatAClientWouldKeepWrongly(t *testing.T) {
	evs := stateEvents(t, map[int64]auth.StateKey{1: keyPL, 2: keyName, 3: keyPL, 4: keyTopic})
	tl := []*rooms.StoredEvent{evs[1], evs[2], evs[3], evs[4]}
	for _, c := range []struct {
		name    string
		inForce []int64
		want    []int64
	}{
		{"every last one in force", []int64{2, 3, 4}, []int64{1, 2, 3, 4}},
		{"an earlier one of a key is not in force", []int64{2, 3, 4}, []int64{1, 2, 3, 4}},
		{"the last power levels lost", []int64{1, 2, 4}, []int64{4}},
		{"the name lost", []int64{3, 4}, []int64{3, 4}},
		{"the last event lost", []int64{2, 3}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, cut := cutAtUnresolved(tl, func(_ auth.StateKey, se *rooms.StoredEvent) bool {
				return slices.Contains(c.inForce, se.Seq)
			})
			var seqs []int64
			for _, se := range got {
				seqs = append(seqs, se.Seq)
			}
			if !slices.Equal(seqs, c.want) || cut != (len(c.want) < len(tl)) {
				t.Fatalf("got %v (cut %v), want %v", seqs, cut, c.want)
			}
		})
	}
}

func TestFullSectionTakesTheEndForKeysTheTimelineDoesNotSet(t *testing.T) {
	evs := stateEvents(t, map[int64]auth.StateKey{1: keyPL, 2: keyName, 3: keyPL, 4: keyName, 5: keyTopic})
	start := rooms.State{keyPL: evs[1].Event, keyName: evs[2].Event, keyTopic: evs[5].Event}
	end := rooms.State{keyPL: evs[3].Event, keyName: evs[4].Event}
	inTimeline := map[auth.StateKey]bool{keyPL: true}
	got := fullSection(start, end, inTimeline, false)
	want := rooms.State{keyPL: evs[1].Event, keyName: evs[4].Event}
	if len(got) != len(want) || got[keyPL] != want[keyPL] || got[keyName] != want[keyName] {
		t.Fatalf("state = %v, want %v", got, want)
	}
	if after := fullSection(start, end, inTimeline, true); len(after) != 2 || after[keyPL] != evs[3].Event {
		t.Fatalf("state_after = %v, want the end", after)
	}
}

func TestStateAfterLeavesStateOut(t *testing.T) {
	jr := &JoinedRoom{State: emptyList(), StateAfter: &EventList{Events: []json.RawMessage{}}, Timeline: Timeline{Events: []json.RawMessage{}}}
	raw, err := json.Marshal(jr)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["state"]; ok {
		t.Errorf("state present with state_after: %s", raw)
	}
	if _, ok := m["state_after"]; !ok {
		t.Errorf("state_after missing: %s", raw)
	}
	if _, ok := m["timeline"]; !ok {
		t.Errorf("timeline missing: %s", raw)
	}
	jr.StateAfter = nil
	raw, _ = json.Marshal(jr)
	m = nil
	_ = json.Unmarshal(raw, &m)
	if _, ok := m["state"]; !ok {
		t.Errorf("state missing without state_after: %s", raw)
	}
	if _, ok := m["state_after"]; ok {
		t.Errorf("state_after present without use_state_after: %s", raw)
	}
	lr := &LeftRoom{State: emptyList(), StateAfter: &EventList{Events: []json.RawMessage{}}}
	raw, _ = json.Marshal(lr)
	m = nil
	_ = json.Unmarshal(raw, &m)
	if _, ok := m["state"]; ok {
		t.Errorf("left room: state present with state_after: %s", raw)
	}
}
