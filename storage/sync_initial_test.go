package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

// PrefetchRooms must answer exactly what RoomEventsBetween and RoomSummary
// answer room by room: rooms with fewer and more events than the limit, a
// redacted event, a changed state event (prev_content), invited members,
// and a position before the latest events.
func TestPrefetchRoomsMatchesPerRoomReads(t *testing.T) {
	svc, st := newRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob, carol := uniqueUser(t, "alice"), uniqueUser(t, "bob"), uniqueUser(t, "carol")
	va := rooms.Viewer{User: alice, Device: "D"}
	var ids []id.RoomID
	for i := range 4 {
		room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, room)
		for j := range i * 4 {
			if _, err := svc.Send(ctx, va, room, "m.room.message", fmt.Sprintf("t%d-%d", i, j), json.RawMessage(`{"body":"hi"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := svc.Join(ctx, bob, ids[1], ""); err != nil {
		t.Fatal(err)
	}
	if err := svc.Invite(ctx, alice, ids[1], carol, ""); err != nil {
		t.Fatal(err)
	}
	target, err := svc.Send(ctx, va, ids[2], "m.room.message", "redact-me", json.RawMessage(`{"body":"oops"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Redact(ctx, va, ids[2], target, "r1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetState(ctx, alice, ids[3], "m.room.topic", "", json.RawMessage(`{"topic":"new"}`)); err != nil {
		t.Fatal(err)
	}
	mid, err := sync.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(ctx, va, ids[3], "m.room.message", "late", json.RawMessage(`{"body":"after mid"}`)); err != nil {
		t.Fatal(err)
	}
	end, err := sync.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unknown := id.RoomID("!nosuchroom:" + string(roomServer))

	for _, c := range []struct {
		upTo  int64
		limit int
	}{{end, 5}, {end, 50}, {mid, 3}} {
		t.Run(fmt.Sprintf("upTo=%d limit=%d", c.upTo, c.limit), func(t *testing.T) {
			got, err := sync.PrefetchRooms(ctx, syncer.PrefetchRequest{Rooms: append(ids, unknown), User: alice, UpTo: c.upTo, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if got[unknown] != nil {
				t.Errorf("a room that does not exist was prefetched: %+v", got[unknown])
			}
			for _, room := range ids {
				p := got[room]
				if p == nil || !p.HasEvents || !p.HasSummary {
					t.Fatalf("room %s: prefetch %+v lacks events or summary", room, p)
				}
				evs, limited, err := sync.RoomEventsBetween(ctx, room, 0, c.upTo, c.limit)
				if err != nil {
					t.Fatal(err)
				}
				if limited != p.Limited || !reflect.DeepEqual(eventIDs(evs), eventIDs(p.Events)) {
					t.Errorf("room %s: prefetched events %v (limited %v), RoomEventsBetween %v (limited %v)",
						room, eventIDs(p.Events), p.Limited, eventIDs(evs), limited)
				}
				for i := range min(len(evs), len(p.Events)) {
					a, b := evs[i], p.Events[i]
					if a.Seq != b.Seq || a.StreamPos != b.StreamPos || string(a.Event.Raw()) != string(b.Event.Raw()) ||
						string(a.PrevContent) != string(b.PrevContent) || (a.Redaction == nil) != (b.Redaction == nil) ||
						a.TxnID != b.TxnID || a.TxnDevice != b.TxnDevice || a.RoomID != b.RoomID {
						t.Errorf("room %s event %d: prefetched %+v, read %+v", room, a.Seq, b, a)
					}
				}
				sum, err := sync.RoomSummary(ctx, room, alice)
				if err != nil {
					t.Fatal(err)
				}
				if len(sum.Heroes) == 0 {
					sum.Heroes = []id.UserID{}
				}
				ps := p.Summary
				if len(ps.Heroes) == 0 {
					ps.Heroes = []id.UserID{}
				}
				if !reflect.DeepEqual(sum, ps) {
					t.Errorf("room %s: prefetched summary %+v, RoomSummary %+v", room, ps, sum)
				}
			}
		})
	}
	// The cases above must have covered what they claim.
	p, err := sync.PrefetchRooms(ctx, syncer.PrefetchRequest{Rooms: ids, User: alice, UpTo: end, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if s := p[ids[1]].Summary; s.Joined != 2 || s.Invited != 1 || len(s.Heroes) != 2 {
		t.Errorf("room with bob joined and carol invited: summary %+v", s)
	}
	all, err := sync.PrefetchRooms(ctx, syncer.PrefetchRequest{Rooms: ids, User: alice, UpTo: end, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if !p[ids[3]].Limited || len(p[ids[3]].Events) != 5 || all[ids[0]].Limited {
		t.Errorf("limited: room 3 at 5 %v with %d events (want true, 5), room 0 at 50 %v (want false)",
			p[ids[3]].Limited, len(p[ids[3]].Events), all[ids[0]].Limited)
	}
	var redacted bool
	for _, se := range p[ids[2]].Events {
		redacted = redacted || se.Redaction != nil
	}
	if !redacted {
		t.Error("room 2's redacted message came without its redaction")
	}
}

func eventIDs(evs []*rooms.StoredEvent) []id.EventID {
	out := make([]id.EventID, len(evs))
	for i, se := range evs {
		out[i] = se.Event.EventID()
	}
	return out
}

// noPrefetch is the sync store without PrefetchRooms (the field hides the
// promoted method; every other optional interface stays): each room's
// builder reads its own timeline and summary, and its state with one
// RoomStates of that room.
type noPrefetch struct {
	*storage.Sync
	PrefetchRooms struct{}
}

// perRoomReads is the sync store without PrefetchRooms and RoomStates:
// every room's state is read as before either existed (StateBefore of the
// whole current state, StateDeltas, StateEvents).
type perRoomReads struct {
	*storage.Sync
	PrefetchRooms struct{}
	RoomStates    struct{}
}

// countingPrefetch counts the prefetches and the RoomStates reads.
type countingPrefetch struct {
	*storage.Sync
	calls, stateCalls int
}

func (c *countingPrefetch) PrefetchRooms(ctx context.Context, req syncer.PrefetchRequest) (map[id.RoomID]*syncer.RoomPrefetch, error) {
	c.calls++
	return c.Sync.PrefetchRooms(ctx, req)
}

func (c *countingPrefetch) RoomStates(ctx context.Context, reqs []syncer.RoomStatesRequest) (map[id.RoomID]*syncer.RoomStates, error) {
	c.stateCalls++
	return c.Sync.RoomStates(ctx, reqs)
}

// initialSyncFixture is a user in many rooms of every kind an initial sync
// shows: joined rooms with members that never speak, senders other than
// the user, redacted messages and a redacted state event, a changed topic,
// an invite and a leave within the latest events (member keys of users who
// sent nothing), a room young enough for its m.room.create to be in the
// timeline; rooms the user left (include_leave) and rooms they are invited
// to.
type initialSyncFixture struct {
	user                id.UserID
	joined, left, invit []id.RoomID
}

func newInitialSyncFixture(ctx context.Context, t *testing.T, svc *rooms.Service) *initialSyncFixture {
	t.Helper()
	alice, bob, carol, dave := uniqueUser(t, "alice"), uniqueUser(t, "bob"), uniqueUser(t, "carol"), uniqueUser(t, "dave")
	f := &initialSyncFixture{user: alice}
	var txn int
	send := func(u id.UserID, room id.RoomID, body string) id.EventID {
		t.Helper()
		txn++
		eid, err := svc.Send(ctx, rooms.Viewer{User: u, Device: "D"}, room, "m.room.message", fmt.Sprint("t", txn), json.RawMessage(`{"body":"`+body+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		return eid
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	join := func(u id.UserID, room id.RoomID) {
		t.Helper()
		_, err := svc.Join(ctx, u, room, "")
		must(err)
	}
	for i := range 12 {
		room, err := svc.CreateRoom(ctx, bob, rooms.CreateRequest{Preset: "public_chat"})
		must(err)
		f.joined = append(f.joined, room)
		join(alice, room)
		// Members who never send: a lazy-loading sync must leave them out.
		for j := range i % 5 {
			join(uniqueUser(t, fmt.Sprintf("quiet%d", j)), room)
		}
		if i%3 == 0 {
			join(carol, room)
		}
		for j := range i * 3 {
			switch {
			case i%3 == 0 && j%2 == 0:
				send(carol, room, "from carol")
			case j%3 == 1:
				send(bob, room, "from bob")
			default:
				send(alice, room, "hi")
			}
		}
		switch i % 4 {
		case 1:
			target := send(alice, room, "oops")
			_, err := svc.Redact(ctx, rooms.Viewer{User: alice, Device: "D"}, room, target, fmt.Sprint("r", i), "")
			must(err)
		case 2:
			_, err := svc.SetState(ctx, bob, room, "m.room.topic", "", json.RawMessage(`{"topic":"changed"}`))
			must(err)
		case 3:
			topic, err := svc.SetState(ctx, bob, room, "m.room.topic", "", json.RawMessage(`{"topic":"secret"}`))
			must(err)
			_, err = svc.Redact(ctx, rooms.Viewer{User: bob, Device: "D"}, room, topic, fmt.Sprint("rt", i), "")
			must(err)
		}
		if i == 5 {
			must(svc.Invite(ctx, bob, room, dave, ""))
			send(bob, room, "after the invite")
		}
		if i == 7 {
			join(dave, room)
			must(svc.Leave(ctx, dave, room, ""))
			send(bob, room, "after dave left")
		}
	}
	for i := range 2 {
		room, err := svc.CreateRoom(ctx, bob, rooms.CreateRequest{Preset: "public_chat"})
		must(err)
		f.left = append(f.left, room)
		join(alice, room)
		join(carol, room)
		for range 4 + i*6 {
			send(carol, room, "before alice left")
		}
		send(alice, room, "bye")
		must(svc.Leave(ctx, alice, room, ""))
		send(bob, room, "after alice left")
	}
	for range 2 {
		room, err := svc.CreateRoom(ctx, bob, rooms.CreateRequest{Preset: "private_chat"})
		must(err)
		f.invit = append(f.invit, room)
		send(bob, room, "before the invite")
		must(svc.Invite(ctx, bob, room, alice, ""))
	}
	return f
}

// An initial sync of many rooms reads their timelines, summaries and
// state sections with one prefetch and one RoomStates, and answers exactly
// what the per-room reads answer — with RoomStates room by room, and with
// neither (the whole current state of each room, then lazy loading drops
// members) — under filters with and without lazy-loading, with limits
// above and below the rooms' histories, a selective timeline filter (its
// rooms read further back than the prefetch), include_leave, and
// use_state_after.
func TestInitialSyncWithPrefetchMatchesWithout(t *testing.T) {
	svc, st, _, pool := newFillService(t)
	ctx := context.Background()
	f := newInitialSyncFixture(ctx, t, svc)
	filters := storage.NewFilters(pool)
	newSync := func(store syncer.Store) *syncer.Service {
		return syncer.New(syncer.Config{}, filters, store, syncer.NewNotifier(nil), svc, slog.Default())
	}
	counting := &countingPrefetch{Sync: storage.NewSync(st)}
	with := newSync(counting)
	byRoom := newSync(noPrefetch{Sync: storage.NewSync(st)})
	plain := newSync(perRoomReads{Sync: storage.NewSync(st)})
	const lazy4 = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":4}}}`
	for _, c := range []struct {
		filter     string
		stateAfter bool
		// onlyPrefetched: every room shown is a joined room whose
		// timeline the prefetch holds whole, so one RoomStates reads all.
		onlyPrefetched bool
	}{
		{"", false, true},
		{elementFilter, false, true},
		{lazy4, false, true},
		{`{"room":{"timeline":{"limit":4}}}`, false, true},
		{`{"room":{"timeline":{"limit":50}}}`, false, true},
		{`{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":2,"types":["m.room.topic","m.room.member"]}}}`, false, false},
		{`{"room":{"include_leave":true,"state":{"lazy_load_members":true},"timeline":{"limit":5}}}`, false, false},
		{`{"room":{"include_leave":true,"timeline":{"limit":5}}}`, false, false},
		{lazy4, true, true},
		{"", true, true},
	} {
		t.Run(fmt.Sprintf("filter %s state_after %v", c.filter, c.stateAfter), func(t *testing.T) {
			before, statesBefore := counting.calls, counting.stateCalls
			req := syncer.Request{User: f.user, Device: "D", Filter: c.filter, UseStateAfter: c.stateAfter}
			a, err := with.Sync(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if counting.calls != before+1 {
				t.Errorf("%d prefetches for one initial sync, want 1", counting.calls-before)
			}
			if n := counting.stateCalls - statesBefore; c.onlyPrefetched && n != 1 {
				t.Errorf("%d RoomStates reads for one initial sync, want 1 (all rooms at once)", n)
			}
			if len(a.Rooms.Join) != len(f.joined) || len(a.Rooms.Invite) != len(f.invit) {
				t.Fatalf("%d joined rooms and %d invites, want %d and %d", len(a.Rooms.Join), len(a.Rooms.Invite), len(f.joined), len(f.invit))
			}
			if strings.Contains(c.filter, "include_leave") && len(a.Rooms.Leave) != len(f.left) {
				t.Fatalf("%d left rooms with include_leave, want %d", len(a.Rooms.Leave), len(f.left))
			}
			ja := roomsJSON(t, a)
			for name, other := range map[string]*syncer.Service{"RoomStates room by room": byRoom, "the whole state room by room": plain} {
				b, err := other.Sync(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if jb := roomsJSON(t, b); ja != jb {
					i := 0
					for i < min(len(ja), len(jb)) && ja[i] == jb[i] {
						i++
					}
					t.Errorf("rooms differ with the prefetch and %s from byte %d:\n with    …%s\n without …%s", name,
						i, ja[max(0, i-300):min(len(ja), i+200)], jb[max(0, i-300):min(len(jb), i+200)])
				}
			}
		})
	}
}

// roomsJSON is the rooms section of a sync response, every unsigned.age
// (the time since the event, which differs between two syncs) zeroed.
func roomsJSON(t *testing.T, resp *syncer.Response) string {
	t.Helper()
	j, err := json.Marshal(resp.Rooms)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`"age":[0-9]+`).ReplaceAllString(string(j), `"age":0`)
}
