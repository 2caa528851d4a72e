package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
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
// promoted method; every other optional interface stays).
type noPrefetch struct {
	*storage.Sync
	PrefetchRooms struct{}
}

// countingPrefetch counts the prefetches.
type countingPrefetch struct {
	*storage.Sync
	calls int
}

func (c *countingPrefetch) PrefetchRooms(ctx context.Context, req syncer.PrefetchRequest) (map[id.RoomID]*syncer.RoomPrefetch, error) {
	c.calls++
	return c.Sync.PrefetchRooms(ctx, req)
}

// An initial sync of many rooms reads their timelines and summaries with
// one prefetch, and answers exactly what the per-room reads answer.
func TestInitialSyncWithPrefetchMatchesWithout(t *testing.T) {
	svc, st, _, pool := newFillService(t)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	va := rooms.Viewer{User: alice, Device: "D"}
	for i := range 12 {
		room, err := svc.CreateRoom(ctx, bob, rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Join(ctx, alice, room, ""); err != nil {
			t.Fatal(err)
		}
		for j := range i * 3 {
			if _, err := svc.Send(ctx, va, room, "m.room.message", fmt.Sprintf("t%d-%d", i, j), json.RawMessage(`{"body":"hi"}`)); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 1 {
			target, err := svc.Send(ctx, va, room, "m.room.message", fmt.Sprintf("r%d", i), json.RawMessage(`{"body":"oops"}`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Redact(ctx, va, room, target, fmt.Sprintf("rr%d", i), ""); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 2 {
			if _, err := svc.SetState(ctx, bob, room, "m.room.topic", "", json.RawMessage(`{"topic":"changed"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	filters := storage.NewFilters(pool)
	counting := &countingPrefetch{Sync: storage.NewSync(st)}
	with := syncer.New(syncer.Config{}, filters, counting, syncer.NewNotifier(nil), svc, slog.Default())
	without := syncer.New(syncer.Config{}, filters, noPrefetch{Sync: storage.NewSync(st)}, syncer.NewNotifier(nil), svc, slog.Default())
	for _, filter := range []string{"", elementFilter, `{"room":{"timeline":{"limit":4}}}`} {
		t.Run("filter "+filter, func(t *testing.T) {
			before := counting.calls
			req := syncer.Request{User: alice, Device: "D", Filter: filter}
			a, err := with.Sync(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := without.Sync(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if counting.calls != before+1 {
				t.Errorf("%d prefetches for one initial sync, want 1", counting.calls-before)
			}
			if len(a.Rooms.Join) != 12 {
				t.Fatalf("%d joined rooms, want 12", len(a.Rooms.Join))
			}
			// unsigned.age is the time since the event: it differs
			// between the two syncs.
			age := regexp.MustCompile(`"age":[0-9]+`)
			ja, _ := json.Marshal(a.Rooms)
			jb, _ := json.Marshal(b.Rooms)
			ja, jb = age.ReplaceAll(ja, []byte(`"age":0`)), age.ReplaceAll(jb, []byte(`"age":0`))
			if string(ja) != string(jb) {
				i := 0
				for i < min(len(ja), len(jb)) && ja[i] == jb[i] {
					i++
				}
				t.Errorf("rooms differ with the prefetch from byte %d:\n with    …%s\n without …%s",
					i, ja[max(0, i-200):min(len(ja), i+200)], jb[max(0, i-200):min(len(jb), i+200)])
			}
		})
	}
}
