package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	sqlfiles "github.com/parleyhq/parley/sql"
	"github.com/parleyhq/parley/storage"
)

// The topological order of history reads (rooms/topological.go,
// sql/0015): /messages by depth, then arrival; /sync by arrival.

// pageAll pages through room with limit-sized /messages pages in dir from
// from, returning the event ids in the order received and failing on a
// repeated event.
func pageAll(t *testing.T, svc *rooms.Service, user id.UserID, room id.RoomID, from string, dir rooms.Direction, limit int) []id.EventID {
	t.Helper()
	var out []id.EventID
	for range 100 {
		page, err := svc.Messages(context.Background(), user, room, rooms.MessagesRequest{From: from, Dir: dir, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range page.Chunk {
			if slices.Contains(out, se.Event.EventID()) {
				t.Fatalf("event %s twice while paging (%v)", se.Event.EventID(), out)
			}
			out = append(out, se.Event.EventID())
		}
		if page.End == "" {
			return out
		}
		from = page.End
	}
	t.Fatal("paging did not end")
	return nil
}

func TestMessagesOrderALateForkEventByDepth(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, join := h.publicRoom("")
	fork := h.head(room)
	var local []id.EventID
	for i := range 3 {
		eid, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprintf("l%d", i),
			[]byte(fmt.Sprintf(`{"msgtype":"m.text","body":"local %d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		local = append(local, eid)
	}
	// bob's server sent one on the same head; it arrives after all three.
	// Of the same depth as the first local event, it comes after it here
	// because its event id's tie-break is higher (sql/0024; the other
	// case: TestMessagesOrderEventsOfOneDepthByEventIDNotArrival).
	late := eventTiedAbove(h, local[0], func(i int) *event.Event {
		return h.remoteEvent(fork, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":"late %d"}`, i), []*event.Event{join}, fork.State)
	})
	h.mustReceive(late)

	// Arrival order puts it last; the topological order by its depth, with
	// the first local event (same depth, lower tie-break) before it.
	if tl := h.timeline(room); tl[len(tl)-1] != late.EventID() {
		t.Fatalf("arrival order does not end with the late event")
	}
	want := []id.EventID{join.EventID(), local[0], late.EventID(), local[1], local[2]}
	forward := pageAll(t, h.svc, alice, room, "", rooms.Forward, 2)
	if got := forward[len(forward)-5:]; !slices.Equal(got, want) {
		t.Fatalf("forward /messages ends %v, want %v", got, want)
	}
	backward := pageAll(t, h.svc, alice, room, "", rooms.Backward, 1)
	slices.Reverse(backward)
	if !slices.Equal(backward, forward) {
		t.Fatalf("backward pages %v\nforward pages %v", backward, forward)
	}
	// A sync timeline starting with the late event has prev_batch "t" of
	// the position before it: paging back from it misses none of what
	// arrived before (the late event itself comes again: it is
	// topologically before them).
	lateSeq := h.known(room, late.EventID()).Seq
	fromSync, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: rooms.PositionToken(lateSeq - 1), Dir: rooms.Backward, Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOfStored(fromSync.Chunk); !slices.Equal(got, []id.EventID{local[2], local[1], late.EventID(), local[0]}) {
		t.Fatalf("/messages back from before the late event's arrival: %v", got)
	}
	// /sync keeps arrival order.
	evs, _, err := h.st.RoomEventsBetween(h.ctx, room, 0, 1<<62, 10)
	if err != nil {
		t.Fatal(err)
	}
	if evs[len(evs)-1].Event.EventID() != late.EventID() {
		t.Fatalf("the newest event of the sync range is %s, want the late one", evs[0].Event.EventID())
	}

	// /context of the late event: local 0 before it, local 1 and 2 after.
	c, err := h.svc.Context(h.ctx, alice, room, late.EventID(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Before) != 1 || c.Before[0].Event.EventID() != local[0] || len(c.After) != 1 || c.After[0].Event.EventID() != local[1] {
		t.Fatalf("context of the late event: before %v after %v", c.Before, c.After)
	}
	next, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: c.End, Dir: rooms.Forward, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Chunk) != 1 || next.Chunk[0].Event.EventID() != local[2] {
		t.Fatalf("/messages from the context's end: %d events", len(next.Chunk))
	}
	prev, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: c.Start, Dir: rooms.Backward, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.Chunk) != 1 || prev.Chunk[0].Event.EventID() != join.EventID() {
		t.Fatalf("/messages back from the context's start does not give bob's join")
	}
}

// buildAtDepth is fedHarness.build with the depth given: a server that
// lies about it.
func (h *fedHarness) buildAtDepth(depth int64, head *rooms.Head, sender id.UserID, content string, prev []*event.Event) *event.Event {
	h.t.Helper()
	var authRefs []event.Ref
	for _, k := range auth.SelectAuthEvents(head.Version, "m.room.message", nil, sender, json.RawMessage(content)) {
		if ev := head.State[k]; ev != nil {
			authRefs = append(authRefs, ev.Ref())
		}
	}
	var prevRefs []event.Ref
	for _, p := range prev {
		prevRefs = append(prevRefs, p.Ref())
	}
	h.ts++
	ev, err := event.Build(head.Version, event.Proto{Sender: sender, Type: "m.room.message", Content: json.RawMessage(content),
		RoomID: head.RoomID, PrevEvents: prevRefs, AuthEvents: authRefs, Depth: depth, OriginServerTS: h.ts}, inRemote, h.remote.key)
	if err != nil {
		h.t.Fatal(err)
	}
	h.remote.mu.Lock()
	h.remote.events[ev.EventID()] = ev
	h.remote.stateBefore[ev.EventID()] = head.State
	h.remote.mu.Unlock()
	return ev
}

func TestMessagesPlaceADepthBelowItsPrevEventsAfterThem(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	for i := range 3 {
		if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprintf("l%d", i),
			[]byte(`{"msgtype":"m.text","body":"local"}`)); err != nil {
			t.Fatal(err)
		}
	}
	hd := h.head(room)
	shallow := h.buildAtDepth(2, hd, bob, `{"msgtype":"m.text","body":"shallow"}`, hd.Extremities)
	h.mustReceive(shallow)
	page, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if page.Chunk[0].Event.EventID() != shallow.EventID() {
		t.Fatalf("an event claiming depth 2 on top of the room is not the latest in /messages")
	}
	// An event of that server on top of it comes after it again.
	deeper := h.buildAtDepth(3, hd, bob, `{"msgtype":"m.text","body":"next"}`, []*event.Event{shallow})
	h.mustReceive(deeper)
	page, err = h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if page.Chunk[0].Event.EventID() != deeper.EventID() || page.Chunk[1].Event.EventID() != shallow.EventID() {
		t.Fatalf("the events of a lying server are out of their order")
	}
}

func TestMessagesRefuseBadTokens(t *testing.T) {
	h := newFedHarness(t)
	room, alice, _, _ := h.publicRoom("")
	hd := h.head(room)
	good, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 2})
	if err != nil || good.End == "" {
		t.Fatalf("first page: end %q, %v", good.End, err)
	}
	for _, tok := range []string{
		"x", "o", "o1", "o1_", "o_1", "o-1_1", "oA_1", "o01_1", "o1_+1", "o1_1_", "o1_zzzzzzzzzzzzzzzzzz",
		"o1_" + strconv.FormatInt(hd.Seq+1000, 36), // a position the room never had
		rooms.PositionToken(hd.Seq + 1), "t", "t-1", "h0", "s12_3", good.End + "x",
	} {
		for _, dir := range []rooms.Direction{rooms.Backward, rooms.Forward} {
			_, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: tok, Dir: dir, Limit: 5})
			if !errors.Is(err, mxerr.InvalidParam) {
				t.Errorf("from %q (%c): %v, want M_INVALID_PARAM", tok, dir, err)
			}
			_, err = h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: good.End, To: tok, Dir: dir, Limit: 5})
			if !errors.Is(err, mxerr.InvalidParam) {
				t.Errorf("to %q (%c): %v, want M_INVALID_PARAM", tok, dir, err)
			}
		}
	}
	// The arrival-order tokens of the sync engine and earlier versions
	// still read: before the latest event, its predecessor comes first.
	page, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{From: rooms.PositionToken(hd.Seq - 1), Dir: rooms.Backward, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	all := pageAll(t, h.svc, alice, room, "", rooms.Backward, 10)
	if len(page.Chunk) != 1 || page.Chunk[0].Event.EventID() != all[1] {
		t.Fatalf("a t token before the latest event gave %v, want %s", page.Chunk, all[1])
	}
}

// historyBeforeJoin is a room of bob on the remote server with n messages
// of history under the given history visibility, which dave of this
// server then joins over federation; backfill is on.
func historyBeforeJoin(t *testing.T, h *fedHarness, visibility string, n int) (room id.RoomID, dave id.UserID, history []*event.Event, join *event.Event, st rooms.State) {
	t.Helper()
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	hv := h.build(inRemote, v, room, bob, "m.room.history_visibility", strp(""), fmt.Sprintf(`{"history_visibility":%q}`, visibility), []*event.Event{last}, st)
	st, last = st.With(hv), hv
	for i := range n {
		last = h.build(inRemote, v, room, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":"old %d"}`, i), []*event.Event{last}, st)
		history = append(history, last)
	}
	dave = uniqueUser(t, "dave")
	join = h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	h.svc.SetBackfill(&remoteHistory{h: h})
	return room, dave, history, join, st.With(join)
}

func TestBackfilledHistoryFollowsHistoryVisibility(t *testing.T) {
	for _, tc := range []struct {
		visibility string
		sees       bool
	}{{"shared", true}, {"world_readable", true}, {"joined", false}, {"invited", false}} {
		t.Run(tc.visibility, func(t *testing.T) {
			h := newFedHarness(t)
			room, dave, history, join, _ := historyBeforeJoin(t, h, tc.visibility, 60)
			got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 7)
			slices.Reverse(got)
			want := []id.EventID{join.EventID()}
			if tc.sees {
				want = append(idsOf(history), want...)
			}
			// The room's first six events (create, bob's join, power levels,
			// join rules, a first history visibility and tc's) come before
			// any history visibility was set: once the history is held back
			// to the creation, they are "shared".
			if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
				t.Fatalf("dave pages back %d events, want the last %d to be %d history messages and the join", len(got), len(want), len(want)-1)
			}
			if n := len(got) - len(want); n != 6 {
				t.Fatalf("%d events before the history, want the room's 6 first", n)
			}
			// A pre-join event is as visible by id as in /messages.
			_, err := h.svc.Event(h.ctx, dave, room, history[3].EventID())
			if tc.sees != (err == nil) {
				t.Fatalf("GET /event of a pre-join message: %v", err)
			}
		})
	}
}

func TestBackfillPromotesTheOutliersOfTheJoin(t *testing.T) {
	h := newFedHarness(t)
	room, dave, history, join, st := historyBeforeJoin(t, h, "shared", 3)
	// Before backfill the room's state is outliers, not in the timeline.
	if k := h.known(room, st.Get(auth.TypeCreate, "").EventID()); k == nil || !k.Outlier {
		t.Fatal("the create event is not an outlier after the join")
	}
	// The sync engine's prev_batch for a timeline that starts with the join
	// continues into the backfilled history.
	page, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{
		From: rooms.PositionToken(h.known(room, join.EventID()).Seq - 1), Dir: rooms.Backward, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOfStored(page.Chunk); !slices.Equal(ids, []id.EventID{history[2].EventID(), history[1].EventID(), history[0].EventID()}) {
		t.Fatalf("/messages from before the join: %v", ids)
	}
	rest := pageAll(t, h.svc, dave, room, page.End, rooms.Backward, 3)
	slices.Reverse(rest)
	// Down to the create event, in their depth order, once each.
	create := st.Get(auth.TypeCreate, "")
	if len(rest) != 6 || rest[0] != create.EventID() {
		t.Fatalf("history before the messages: %v, want the 6 state events from the create", rest)
	}
	for i := 1; i < len(rest); i++ {
		a, b := h.known(room, rest[i-1]), h.known(room, rest[i])
		if a.Event.Depth() >= b.Event.Depth() {
			t.Fatalf("event %d of the room's beginning is not deeper than the one before", i)
		}
	}
	if k := h.known(room, create.EventID()); k.Outlier {
		t.Fatal("the create event stayed an outlier")
	}
	// Promoted history is no news: in no sync range.
	evs, _, err := h.st.RoomEventsBetween(h.ctx, room, 0, 1<<62, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range evs {
		if slices.Contains(rest, se.Event.EventID()) || slices.Contains(idsOf(history), se.Event.EventID()) {
			t.Fatalf("backfilled event %s (%s) in a sync range", se.Event.EventID(), se.Event.Type())
		}
	}
}

func idsOfStored(evs []*rooms.StoredEvent) []id.EventID {
	var out []id.EventID
	for _, se := range evs {
		out = append(out, se.Event.EventID())
	}
	return out
}

// TestMigration0015FillsTheTopoOfStoredEvents: the events stored before
// sql/0015 get their depth as topological position.
func TestMigration0015FillsTheTopoOfStoredEvents(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	before, all := fstest.MapFS{}, fstest.MapFS{}
	entries, err := fs.ReadDir(sqlfiles.Migrations, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(sqlfiles.Migrations, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		all[e.Name()] = &fstest.MapFile{Data: data}
		if e.Name() < "0015" {
			before[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	if err := storage.Migrate(ctx, pool, before); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
INSERT INTO rooms (room_id, room_version, created_ts) VALUES ('!old:rooms.test', '10', 0);
INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, sender, origin_ts, snapshot_nid, event_json)
SELECT room_nid, d, d, '$e' || d, 'm.room.message', '@a:rooms.test', 0, 0, convert_to('{"depth":' || (d * 7) || ',"type":"m.room.message"}', 'UTF8')
FROM rooms, generate_series(1, 3) d`); err != nil {
		t.Fatal(err)
	}
	if err := storage.Migrate(ctx, pool, all); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT topo FROM events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	topos, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topos, []int64{7, 14, 21}) {
		t.Fatalf("topo of the stored events after 0015: %v, want their depths", topos)
	}
}

// TestBackfilledHistoryFollowsEachHistoryVisibilityChange: history that
// was "shared", then "joined", then "shared" again before dave joined: the
// messages of the "joined" stretch stay hidden from him, also when the
// history visibility event that started it comes in the same backfill as
// the room's creation.
func TestBackfilledHistoryFollowsEachHistoryVisibilityChange(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	var shown, hidden []id.EventID
	send := func(body string) id.EventID {
		last = h.build(inRemote, v, room, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body), []*event.Event{last}, st)
		return last.EventID()
	}
	setHV := func(hv string) {
		last = h.build(inRemote, v, room, bob, "m.room.history_visibility", strp(""), fmt.Sprintf(`{"history_visibility":%q}`, hv), []*event.Event{last}, st)
		st = st.With(last)
	}
	shown = append(shown, send("shared 1"), send("shared 2"))
	setHV("joined")
	hidden = append(hidden, send("joined 1"), send("joined 2"), send("joined 3"))
	setHV("shared")
	shown = append(shown, send("shared again"))
	dave := uniqueUser(t, "dave")
	join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	h.svc.SetBackfill(&remoteHistory{h: h})

	got := pageAll(t, h.svc, dave, room, "", rooms.Backward, 50)
	for _, e := range shown {
		if !slices.Contains(got, e) {
			t.Errorf("a message of shared history is not shown")
		}
	}
	for _, e := range hidden {
		if slices.Contains(got, e) {
			t.Errorf("a message of joined history is shown to a later joiner")
		}
		if _, err := h.svc.Event(h.ctx, dave, room, e); err == nil {
			t.Errorf("GET /event shows a message of joined history to a later joiner")
		}
	}
}
