package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// remoteHistory answers /backfill from the remote server's events (the
// inbound harness's fake remote): the given events and their ancestors,
// deepest first. forged, when set, replaces one event by a copy whose
// signature does not verify.
type remoteHistory struct {
	h      *fedHarness
	calls  atomic.Int32
	forged id.EventID
}

func (r *remoteHistory) Backfill(_ context.Context, _ id.ServerName, _ id.RoomID, from []id.EventID, limit int) ([]json.RawMessage, error) {
	r.calls.Add(1)
	f := r.h.remote
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []json.RawMessage
	seen := map[id.EventID]bool{}
	queue := append([]id.EventID(nil), from...)
	for len(queue) > 0 && len(out) < limit {
		e := queue[0]
		queue = queue[1:]
		ev := f.events[e]
		if ev == nil || seen[e] {
			continue
		}
		seen[e] = true
		raw := ev.Raw()
		if e == r.forged {
			var obj map[string]any
			_ = json.Unmarshal(raw, &obj)
			obj["content"] = map[string]any{"body": "forged", "msgtype": "m.text"}
			obj["hashes"] = map[string]any{"sha256": "AAAA"}
			raw, _ = json.Marshal(obj)
		}
		out = append(out, raw)
		queue = append(queue, ev.PrevEventIDs()...)
	}
	return out, nil
}

func TestMessagesBackfillsARoomJoinedOverFederation(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	// History on the remote server before anyone of ours joined.
	var history []*event.Event
	for i := range 6 {
		last = h.build(inRemote, v, room, bob, "m.room.message", nil, fmt.Sprintf(`{"msgtype":"m.text","body":"old %d"}`, i), []*event.Event{last}, st)
		history = append(history, last)
	}
	dave := uniqueUser(t, "dave")
	join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}

	bodies := func(page *rooms.Page) []string {
		var out []string
		for _, se := range page.Chunk {
			var c struct {
				Body string `json:"body"`
			}
			if se.Event.Type() == "m.room.message" && json.Unmarshal(se.Event.Content(), &c) == nil {
				out = append(out, c.Body)
			}
		}
		return out
	}
	// Without a backfiller the history starts at the join.
	page, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies(page)) != 0 || page.End != "" {
		t.Fatalf("without backfill: %v, end %q", bodies(page), page.End)
	}

	remote := &remoteHistory{h: h, forged: history[1].EventID()}
	h.svc.SetFederation(rooms.FederationDeps{Keys: h.keyOf})
	h.svc.SetBackfill(remote)
	// Paging back in pages of three reaches the history before the join;
	// the forged event is left out.
	var got []string
	from := ""
	for range 10 {
		page, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{From: from, Dir: rooms.Backward, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bodies(page)...)
		if page.End == "" {
			break
		}
		from = page.End
	}
	if want := []string{"old 5", "old 4", "old 3", "old 2", "old 0"}; !slices.Equal(got, want) {
		t.Fatalf("paged back through %v, want %v", got, want)
	}
	// A forward page from the start ends at the join, in order.
	page, err = h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{From: from, Dir: rooms.Forward, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Chunk); n == 0 || page.Chunk[n-1].Event.EventID() != join.EventID() {
		t.Fatalf("forward page from the oldest token does not end with the join")
	}
	// Nothing more to fetch: the remote is not asked again and again.
	calls := remote.calls.Load()
	for range 3 {
		if _, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{From: from, Dir: rooms.Backward, Limit: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if n := remote.calls.Load(); n > calls+1 {
		t.Fatalf("the remote was asked %d more times at the start of history", n-calls)
	}
	// Backfilled history is no news: it is in no sync range and the room's
	// current state did not change.
	evs, _, err := h.st.RoomEventsBetween(h.ctx, room, 0, 1<<62, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range evs {
		if slices.Contains(idsOf(history), se.Event.EventID()) {
			t.Fatalf("backfilled event %s in a sync range", se.Event.EventID())
		}
	}
	if hd := h.head(room); hd.State.Membership(string(dave)) != "join" || len(hd.State) != len(st)+1 {
		t.Fatal("backfill changed the room's current state")
	}
}
