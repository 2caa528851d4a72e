package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
	"github.com/parleyhq/parley/syncer"
)

// stateIDs maps a state to its event ids.
func stateIDs(st rooms.State) map[auth.StateKey]id.EventID {
	out := make(map[auth.StateKey]id.EventID, len(st))
	for k, ev := range st {
		out[k] = ev.EventID()
	}
	return out
}

// TestStateDeltasReplayTheStateBeforeEveryEvent checks the history of the
// resolved state (sql/0016) of a room that never forked against the
// snapshots: folding the deltas up to the position before each event
// gives the state before it, and the last fold gives the current state.
func TestStateDeltasReplayTheStateBeforeEveryEvent(t *testing.T) {
	svc, st := newRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := svc.Join(ctx, bob, room, ""); err != nil {
			t.Fatal(err)
		}
		name, _ := json.Marshal(map[string]string{"name": fmt.Sprint("room ", i)})
		if _, err := svc.SetState(ctx, alice, room, "m.room.name", "", name); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprint("t", i), []byte(`{"msgtype":"m.text","body":"x"}`)); err != nil {
			t.Fatal(err)
		}
		if err := svc.Leave(ctx, bob, room, ""); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := sync.StateDeltas(ctx, room, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, d := range ds {
		seqs = append(seqs, d.Seq, d.PrevSeq)
	}
	byseq, err := sync.StateEvents(ctx, room, seqs)
	if err != nil {
		t.Fatal(err)
	}
	fold := func(p int64) map[auth.StateKey]id.EventID {
		out := map[auth.StateKey]id.EventID{}
		for _, d := range ds {
			if d.StreamPos > p {
				break
			}
			if se := byseq[d.Seq]; se != nil {
				out[d.Key] = se.Event.EventID()
			} else {
				delete(out, d.Key)
			}
		}
		return out
	}
	evs, err := st.Timeline(ctx, room, 0, rooms.Forward, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range evs[1:] {
		want, err := st.StateBefore(ctx, room, se.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := fold(se.StreamPos - 1); !maps.Equal(got, stateIDs(want)) {
			t.Fatalf("before %s (%s, pos %d): deltas give %v, the snapshot %v", se.Event.EventID(), se.Event.Type(), se.StreamPos, got, stateIDs(want))
		}
	}
	h, err := st.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got := fold(1 << 62); !maps.Equal(got, stateIDs(h.State)) {
		t.Fatalf("deltas give %v, current state %v", got, stateIDs(h.State))
	}

	assertDeltasPositioned(t)
}

// assertDeltasPositioned checks that every committed state delta has its
// stream position (sql/0016's deferred trigger ran).
func assertDeltasPositioned(t *testing.T) {
	t.Helper()
	var unstamped int
	if err := pgtest.NewPool(t).QueryRow(context.Background(), `SELECT count(*) FROM room_state_deltas WHERE stream_pos IS NULL`).Scan(&unstamped); err != nil {
		t.Fatal(err)
	}
	if unstamped != 0 {
		t.Fatalf("%d state deltas without a stream position", unstamped)
	}
}

// syncClient follows a room as a client does: it applies the state
// section and the timeline's state events, or only state_after.
type syncClient struct {
	t          *testing.T
	sync       *syncer.Service
	user       id.UserID
	room       id.RoomID
	stateAfter bool
	filter     string
	since      string
	state      map[auth.StateKey]id.EventID
	timeline   []id.EventID
	limited    bool
}

type clientEv struct {
	EventID  id.EventID `json:"event_id"`
	Type     string     `json:"type"`
	StateKey *string    `json:"state_key"`
}

func (c *syncClient) apply(raws []json.RawMessage, timeline bool) {
	for _, raw := range raws {
		var ev clientEv
		if err := json.Unmarshal(raw, &ev); err != nil {
			c.t.Fatal(err)
		}
		if timeline {
			c.timeline = append(c.timeline, ev.EventID)
			if c.stateAfter {
				continue
			}
		}
		if ev.StateKey != nil {
			c.state[auth.StateKey{Type: ev.Type, StateKey: *ev.StateKey}] = ev.EventID
		}
	}
}

// next runs one sync and applies it.
func (c *syncClient) next() {
	c.t.Helper()
	if c.state == nil {
		c.state = map[auth.StateKey]id.EventID{}
	}
	resp, err := c.sync.Sync(context.Background(), syncer.Request{User: c.user, Device: "D", Since: c.since, Filter: c.filter, UseStateAfter: c.stateAfter})
	if err != nil {
		c.t.Fatal(err)
	}
	c.since = resp.NextBatch
	c.timeline, c.limited = nil, false
	jr := resp.Rooms.Join[c.room]
	if jr == nil {
		return
	}
	if c.stateAfter {
		if jr.StateAfter == nil {
			c.t.Fatal("use_state_after: no state_after")
		}
		c.apply(jr.StateAfter.Events, false)
	} else {
		if jr.StateAfter != nil {
			c.t.Fatal("state_after without use_state_after")
		}
		c.apply(jr.State.Events, false)
	}
	c.apply(jr.Timeline.Events, true)
	c.limited = jr.Timeline.Limited
}

func newSyncClients(t *testing.T, h *fedHarness, user id.UserID, room id.RoomID) []*syncClient {
	pool := pgtest.NewPool(t)
	sync := syncer.New(syncer.Config{}, storage.NewFilters(pool), storage.NewSync(h.st), syncer.NewNotifier(nil), h.svc, slog.Default())
	var out []*syncClient
	for _, after := range []bool{false, true} {
		c := &syncClient{t: t, sync: sync, user: user, room: room, stateAfter: after}
		c.next()
		out = append(out, c)
	}
	return out
}

func (h *fedHarness) mustSetState(sender id.UserID, room id.RoomID, typ, key, content string) id.EventID {
	h.t.Helper()
	eid, err := h.svc.SetState(h.ctx, sender, room, typ, key, json.RawMessage(content))
	if err != nil {
		h.t.Fatal(err)
	}
	return eid
}

// TestSyncEndsWithTheResolvedStateAfterAPowerLevelRace: alice (here) and
// bob (remote) change the power levels on the same head; resolution keeps
// alice's, which reached this server first, so the timeline's last power
// levels event is not the one in force. A client with state_after ends
// right from it; a client without gets a timeline cut after bob's event
// and alice's power levels in its state section. Both, initial and
// incremental, end with the current state.
func TestSyncEndsWithTheResolvedStateAfterAPowerLevelRace(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	h.mustSetState(alice, room, "m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100,%q:100}}`, alice, bob))
	clients := newSyncClients(t, h, alice, room)

	fork := h.head(room)
	mine := h.mustSetState(alice, room, "m.room.power_levels", "", fmt.Sprintf(`{"users":{%q:100,%q:100},"users_default":10}`, alice, bob))
	theirs := h.remoteEvent(fork, bob, "m.room.power_levels", strp(""),
		fmt.Sprintf(`{"users":{%q:100,%q:100},"users_default":20}`, alice, bob), fork.Extremities, fork.State)
	h.mustReceive(theirs)
	head := h.head(room)
	if got := head.State.Get("m.room.power_levels", "").EventID(); got != mine {
		t.Fatalf("resolution kept %s, want alice's %s (the later origin_server_ts): the test's premise", got, mine)
	}
	want := stateIDs(head.State)

	// Initial syncs now (timeline: both power levels events).
	fresh := newSyncClients(t, h, alice, room)
	for _, c := range append(clients, fresh...) {
		c.next()
		if !maps.Equal(c.state, want) {
			t.Errorf("state_after=%v: the client ends with %v, the room's state is %v", c.stateAfter, c.state, want)
		}
		if !c.stateAfter && slices.Contains(c.timeline, theirs.EventID()) {
			t.Errorf("without state_after, the timeline still shows bob's power levels last: %v", c.timeline)
		}
	}
	assertDeltasPositioned(t)
	// Later syncs keep it.
	if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "after", []byte(`{"msgtype":"m.text","body":"after"}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(clients, fresh...) {
		c.next()
		if len(c.timeline) != 1 || !maps.Equal(c.state, want) {
			t.Errorf("state_after=%v, next sync: timeline %v, state %v, want %v", c.stateAfter, c.timeline, c.state, want)
		}
	}
}

// TestSyncCarriesStateTheTimelineFilterLeavesOut: a topic change within
// the timeline's range that the timeline filter leaves out still reaches
// the client, in state (as of the end of the timeline) or state_after.
func TestSyncCarriesStateTheTimelineFilterLeavesOut(t *testing.T) {
	h := newFedHarness(t)
	room, alice, _, _ := h.publicRoom("")
	clients := newSyncClients(t, h, alice, room)
	for _, c := range clients {
		c.filter = `{"room":{"timeline":{"not_types":["m.room.topic"]}}}`
	}
	send := func(txn string) {
		if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", txn, []byte(`{"msgtype":"m.text","body":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	send("m1")
	topic := h.mustSetState(alice, room, "m.room.topic", "", `{"topic":"filtered"}`)
	send("m2")
	for _, c := range clients {
		c.next()
		if got := c.state[auth.StateKey{Type: "m.room.topic"}]; got != topic || len(c.timeline) != 2 {
			t.Errorf("state_after=%v: topic %q (want %s), timeline %v", c.stateAfter, got, topic, c.timeline)
		}
	}
}
