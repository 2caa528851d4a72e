package storage_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// holeRoom is a room dave@ours joined, then a hole: the remote's bob sent
// n messages (depths from depthOf, by index; 0: their true depth)
// that never reached us, and the message after them, x, reached us while
// get_missing_events failed, so it was accepted with the state fetched at
// its prev event: x is in the timeline, its prev event an outlier.
func holeRoom(t testing.TB, h *fedHarness, n int, depthOf func(i int) int64) (room id.RoomID, dave id.UserID, join *event.Event, hole []*event.Event, x *event.Event) {
	t.Helper()
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	dave = uniqueUser(t, "dave")
	join = h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}
	st, last = st.With(join), join
	for i := range n {
		depth := join.Depth() + 1 + int64(i) // one more than the message before, told truly
		if d := depthOf(i); d != 0 {
			depth = d
		}
		last = h.holeMessageAtDepth(v, room, bob, fmt.Sprintf(`{"msgtype":"m.text","body":"hole %d"}`, i), last, st, depth)
		hole = append(hole, last)
	}
	x = h.build(inRemote, v, room, bob, "m.room.message", nil, `{"msgtype":"m.text","body":"after the hole"}`, []*event.Event{last}, st)
	h.remote.missingErr = errors.New("get_missing_events is down")
	h.mustReceive(x)
	h.remote.missingErr = nil
	if k := h.known(room, last.EventID()); k == nil || !k.Outlier {
		t.Fatal("the hole's last message is not an outlier after x")
	}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	return room, dave, join, hole, x
}

// holeMessageAtDepth is build for a message of the remote with the depth given,
// whatever its prev event's: a server that lies about depth.
func (h *fedHarness) holeMessageAtDepth(v roomversion.Version, room id.RoomID, sender id.UserID, content string, prev *event.Event, state rooms.State, depth int64) *event.Event {
	h.t.Helper()
	var authRefs []event.Ref
	for _, k := range auth.SelectAuthEvents(v, "m.room.message", nil, sender, json.RawMessage(content)) {
		if ev := state[k]; ev != nil {
			authRefs = append(authRefs, ev.Ref())
		}
	}
	h.ts++
	ev, err := event.Build(v, event.Proto{Sender: sender, Type: "m.room.message", Content: json.RawMessage(content),
		RoomID: room, PrevEvents: []event.Ref{prev.Ref()}, AuthEvents: authRefs, Depth: depth, OriginServerTS: h.ts}, inRemote, h.remote.key)
	if err != nil {
		h.t.Fatal(err)
	}
	h.remote.mu.Lock()
	h.remote.events[ev.EventID()] = ev
	h.remote.stateBefore[ev.EventID()] = state
	h.remote.mu.Unlock()
	return ev
}

// TestMessagesFillAHoleInTheMiddle: paging back from the end through x
// fills the hole behind it, in several /backfill batches, and returns
// every event once, in order, in any page size; the hole's events carry
// the state before them (their prev event's, folded forward). Once filled
// the remote is not asked again.
func TestMessagesFillAHoleInTheMiddle(t *testing.T) {
	h := newFedHarness(t)
	room, dave, join, hole, x := holeRoom(t, h, 70, func(int) int64 { return 0 })
	stateIDs := h.remote.called("state_ids")
	remote := &remoteHistory{h: h}
	// It answers /state_ids and /event too.
	h.svc.SetBackfill(struct {
		*remoteHistory
		*fakeRemote
	}{remote, h.remote})

	want := append(append([]id.EventID{join.EventID()}, idsOf(hole)...), x.EventID())
	for _, limit := range []int{7, 1, 100} {
		got := pageAll(t, h.svc, dave, room, "", rooms.Backward, limit)
		slices.Reverse(got)
		at := slices.Index(got, join.EventID())
		if at < 0 || !slices.Equal(got[at:], want) {
			t.Fatalf("paged back by %d: %d events from the join on, want the join, the %d of the hole and x in order", limit, len(got)-max(at, 0), len(hole))
		}
		// Forwards from the start, the same.
		fwd := pageAll(t, h.svc, dave, room, "", rooms.Forward, limit)
		if at := slices.Index(fwd, join.EventID()); at < 0 || !slices.Equal(fwd[at:], want) {
			t.Fatalf("paged forwards by %d: not the join, the hole and x in order", limit)
		}
	}
	calls := remote.calls.Load()
	pageAll(t, h.svc, dave, room, "", rooms.Backward, 5)
	if n := remote.calls.Load(); n != calls {
		t.Fatalf("the remote was asked %d more times once the hole was filled", n-calls)
	}
	// The state before the messages of the hole: the room's, with dave
	// joined — in the first batch from /state_ids at its oldest event, in
	// the second from the join's, held.
	for _, i := range []int{0, 10, 20, 40, 69} {
		k := h.known(room, hole[i].EventID())
		st, ok, err := h.st.StoredStateBefore(h.ctx, room, hole[i].EventID())
		if err != nil || !ok || k.Outlier {
			t.Fatalf("the state before message %d of the hole is not known (%v)", i, err)
		}
		if st.Membership(string(dave)) != "join" || st.Get(auth.TypeCreate, "") == nil {
			t.Fatalf("the state before message %d of the hole lacks dave's join or the create event: %d entries", i, len(st))
		}
	}
	if h.remote.called("state_ids") == stateIDs {
		t.Fatal("no /state_ids was asked for the first batch")
	}
}

// TestMessagesPlaceAHoleWhoseDepthsLie: a message of the hole claims a
// depth far above x's (the messages after it tell theirs truly); stored
// below x all the same (at most just below it), it is shown, once, and so
// is every other event of the hole.
func TestMessagesPlaceAHoleWhoseDepthsLie(t *testing.T) {
	h := newFedHarness(t)
	room, dave, join, hole, x := holeRoom(t, h, 12, func(i int) int64 {
		if i == 5 {
			return 100000
		}
		return 0
	})
	h.svc.SetBackfill(&remoteHistory{h: h})
	got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 4)
	for _, e := range append(idsOf(hole), join.EventID(), x.EventID()) {
		if !slices.Contains(got, e) {
			t.Fatalf("%s is not shown", e)
		}
	}
	if got[0] != x.EventID() {
		t.Fatal("x is not the latest event")
	}
}

// emptyHistory is a remote that answers /backfill with nothing.
type emptyHistory struct{ calls atomic.Int32 }

func (e *emptyHistory) Backfill(context.Context, id.ServerName, id.RoomID, []id.EventID, int) ([]json.RawMessage, error) {
	e.calls.Add(1)
	return nil, nil
}

// TestAHoleNoServerFillsIsNotAskedAgain: the remote answers with nothing;
// the hole is asked about once and then recorded as exhausted, also for a
// service started afresh on the same database (sql/0023).
func TestAHoleNoServerFillsIsNotAskedAgain(t *testing.T) {
	h := newFedHarness(t)
	room, dave, _, hole, x := holeRoom(t, h, 3, func(int) int64 { return 0 })
	remote := &emptyHistory{}
	h.svc.SetBackfill(remote)
	for range 3 {
		got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 5)
		if !slices.Contains(got, x.EventID()) || slices.Contains(got, hole[0].EventID()) {
			t.Fatal("x is not shown, or the hole is")
		}
	}
	// Once about x's hole, once about the join's (the history before it).
	if n := remote.calls.Load(); n != 2 {
		t.Fatalf("the remote was asked %d times about two holes it has nothing for, want once each", n)
	}
	again := rooms.New(rooms.Config{ServerName: roomServer, Key: h.local}, h.st, h.notifier, nil, slog.Default())
	again.SetFederation(rooms.FederationDeps{Keys: func(context.Context, id.ServerName, string, int64) (ed25519.PublicKey, error) {
		return nil, errors.New("no keys")
	}})
	again.SetBackfill(remote)
	pageAll(t, again, dave, room, "", rooms.Backward, 5)
	if n := remote.calls.Load(); n != 2 {
		t.Fatalf("after a restart the remote was asked again about an exhausted hole")
	}
}

// TestBackfilledForkFollowsEachBranchsVisibility: history backfilled from
// before dave's join forks; one branch makes the history "joined", the
// other goes on under "shared" to a greater depth. Each message follows
// the state before it (client-server API, "History visibility": the
// visibility at the event), not the deepest history visibility event
// above it: dave sees the "shared" branch, not the "joined" one.
func TestBackfilledForkFollowsEachBranchsVisibility(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	msg := func(body string, prev []*event.Event, state rooms.State) *event.Event {
		return h.build(inRemote, v, room, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body), prev, state)
	}
	base := msg("base", []*event.Event{last}, st)
	hvJoined := h.build(inRemote, v, room, bob, "m.room.history_visibility", strp(""), `{"history_visibility":"joined"}`, []*event.Event{base}, st)
	stJoined := st.With(hvJoined)
	a1 := msg("a1", []*event.Event{hvJoined}, stJoined)
	b1 := msg("b1", []*event.Event{base}, st)
	b2 := msg("b2", []*event.Event{b1}, st)
	b3 := msg("b3", []*event.Event{b2}, st)
	merge := msg("merge", []*event.Event{a1, b3}, stJoined)
	dave := uniqueUser(t, "dave")
	join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{merge}, stJoined)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(stJoined), h.remote.authChain(append(stateList(stJoined), join))); err != nil {
		t.Fatal(err)
	}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	h.svc.SetBackfill(struct {
		*remoteHistory
		*fakeRemote
	}{&remoteHistory{h: h}, h.remote})

	got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 4)
	for _, e := range []*event.Event{base, b1, b2, b3, hvJoined, join} {
		if !slices.Contains(got, e.EventID()) {
			t.Errorf("dave does not see %s, sent under shared history", e.EventID())
		}
	}
	for _, e := range []*event.Event{a1, merge} {
		if slices.Contains(got, e.EventID()) {
			t.Errorf("dave sees %s, sent under joined history before he joined", e.EventID())
		}
	}
}

// TestBackfilledStateEventsCarryWhatTheyReplaced: state events backfilled
// with the state before them know the event each replaced, so clients get
// unsigned.prev_content ("changed the topic from …"): one replacing an
// event of the same batch, one replacing an event of the state fetched
// before the batch, and one that came with the room's state at the join
// (an outlier the backfill moved into the timeline).
func TestBackfilledStateEventsCarryWhatTheyReplaced(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	state := func(typ, content string, prev *event.Event) *event.Event {
		ev := h.build(inRemote, v, room, bob, typ, strp(""), content, []*event.Event{prev}, st)
		st = st.With(ev)
		return ev
	}
	base := h.build(inRemote, v, room, bob, "m.room.message", nil, `{"msgtype":"m.text","body":"base"}`, []*event.Event{last}, st)
	topic1 := state("m.room.topic", `{"topic":"first"}`, base)
	topic2 := state("m.room.topic", `{"topic":"second"}`, topic1)
	shared := st.Get("m.room.history_visibility", "")
	readable := state("m.room.history_visibility", `{"history_visibility":"world_readable"}`, topic2)
	after := h.build(inRemote, v, room, bob, "m.room.message", nil, `{"msgtype":"m.text","body":"after"}`, []*event.Event{readable}, st)
	dave := uniqueUser(t, "dave")
	join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{after}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	h.svc.SetBackfill(struct {
		*remoteHistory
		*fakeRemote
	}{&remoteHistory{h: h}, h.remote})

	got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 3)
	for _, tt := range []struct {
		ev   *event.Event
		want *event.Event // what it replaced; nil: nothing
	}{
		{topic1, nil},
		{topic2, topic1},
		{readable, shared},
	} {
		if !slices.Contains(got, tt.ev.EventID()) {
			t.Fatalf("%s is not in the history dave pages through", tt.ev.Type())
		}
		se, err := h.st.Event(h.ctx, room, tt.ev.EventID())
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if tt.want != nil {
			want = string(tt.want.Content())
		}
		if string(se.PrevContent) != want {
			t.Errorf("%s %s: prev_content %s, want %q", tt.ev.Type(), tt.ev.Content(), se.PrevContent, want)
		}
	}
}
