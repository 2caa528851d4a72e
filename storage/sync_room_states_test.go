package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

// RoomStates must answer, room by room, what StateBefore (past the latest
// event), StateDeltas and StateEvents answer — restricted, for a lazy
// request, to the keys that are not member events and the asked members'
// — for rooms with a redacted state event, members who left, and at a
// position before the latest changes.
func TestRoomStatesMatchesPerRoomReads(t *testing.T) {
	svc, st := newRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	var ids []id.RoomID
	var mid int64
	for i := range 3 {
		room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, room)
		for j := range 4 + i {
			if _, err := svc.Join(ctx, uniqueUser(t, fmt.Sprint("m", j)), room, ""); err != nil {
				t.Fatal(err)
			}
		}
		if i == 1 {
			mid, err = sync.CurrentStreamPos(ctx)
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.Join(ctx, bob, room, ""); err != nil {
			t.Fatal(err)
		}
		topic, err := svc.SetState(ctx, alice, room, "m.room.topic", "", json.RawMessage(`{"topic":"t"}`))
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if _, err := svc.Redact(ctx, rooms.Viewer{User: alice, Device: "D"}, room, topic, "rt", ""); err != nil {
				t.Fatal(err)
			}
			if err := svc.Leave(ctx, bob, room, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	keep := func(lazy bool, members []string) func(k auth.StateKey) bool {
		return func(k auth.StateKey) bool {
			return !lazy || k.Type != auth.TypeMember || slices.Contains(members, k.StateKey)
		}
	}
	lazyMembers := []string{string(bob), string(uniqueUser(t, "m1")), "@nobody:" + string(roomServer)}
	for _, c := range []struct {
		name    string
		after   int64
		lazy    bool
		members []string
	}{
		{"whole, all history", 0, false, nil},
		{"whole, from mid", mid, false, nil},
		{"lazy, all history", 0, true, lazyMembers},
		{"lazy, from mid", mid, true, lazyMembers},
		{"lazy, no members", mid, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var reqs []syncer.RoomStatesRequest
			for _, room := range ids {
				reqs = append(reqs, syncer.RoomStatesRequest{Room: room, After: c.after, Lazy: c.lazy, Members: c.members})
			}
			got, err := sync.RoomStates(ctx, reqs)
			if err != nil {
				t.Fatal(err)
			}
			ok := keep(c.lazy, c.members)
			for _, room := range ids {
				rs := got[room]
				if rs == nil {
					t.Fatalf("room %s: no states", room)
				}
				whole, err := sync.StateBefore(ctx, room, 1<<62)
				if err != nil {
					t.Fatal(err)
				}
				want := map[auth.StateKey]id.EventID{}
				for k, ev := range whole {
					if ok(k) {
						want[k] = ev.EventID()
					}
				}
				if have := stateIDs(rs.Current); !maps.Equal(have, want) {
					t.Errorf("room %s: current state %v, want %v", room, have, want)
				}
				for k, ev := range rs.Current {
					if string(ev.Raw()) != string(whole[k].Raw()) {
						t.Errorf("room %s key %v: %s, StateBefore has %s", room, k, ev.Raw(), whole[k].Raw())
					}
				}
				ds, err := sync.StateDeltas(ctx, room, c.after)
				if err != nil {
					t.Fatal(err)
				}
				var wantDs []syncer.StateDelta
				var seqs []int64
				for _, d := range ds {
					if ok(d.Key) {
						wantDs = append(wantDs, d)
						seqs = append(seqs, d.Seq, d.PrevSeq)
					}
				}
				if !reflect.DeepEqual(rs.Deltas, wantDs) {
					t.Errorf("room %s: deltas %+v, want %+v", room, rs.Deltas, wantDs)
				}
				evs, err := sync.StateEvents(ctx, room, seqs)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range seqs {
					if s == 0 {
						continue
					}
					if a, b := rs.Events[s], evs[s]; a == nil || string(a.Event.Raw()) != string(b.Event.Raw()) {
						t.Errorf("room %s: event %d is %v, StateEvents has %s", room, s, a, b.Event.Raw())
					}
				}
			}
		})
	}
	t.Run("no current state", func(t *testing.T) {
		got, err := sync.RoomStates(ctx, []syncer.RoomStatesRequest{{Room: ids[0], NoCurrent: true}, {Room: ids[1]}})
		if err != nil {
			t.Fatal(err)
		}
		if got[ids[0]].Current != nil || len(got[ids[0]].Deltas) == 0 || len(got[ids[1]].Current) == 0 {
			t.Errorf("NoCurrent room: current %v with %d deltas; other room %d entries", got[ids[0]].Current, len(got[ids[0]].Deltas), len(got[ids[1]].Current))
		}
	})
}

// A lazy-loading initial sync's state section carries the member events
// of the timeline's senders and the user's own, and no other — while the
// room's summary still counts every member — with the prefetch (many
// rooms) and without (one room, per-room reads).
func TestLazyInitialSyncMembersAreSendersAndSelf(t *testing.T) {
	svc, st, _, pool := newFillService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	var members []id.UserID
	for j := range 30 {
		members = append(members, uniqueUser(t, fmt.Sprint("member", j)))
	}
	var ids []id.RoomID
	var txn int
	for i := range 9 {
		room, err := svc.CreateRoom(ctx, members[0], rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, room)
		for _, u := range append(members[1:], alice) {
			if _, err := svc.Join(ctx, u, room, ""); err != nil {
				t.Fatal(err)
			}
		}
		// The last 10 events are sent by members 0 … 3 and, in some
		// rooms, alice; earlier ones by members 4 … 8.
		for j := range 20 {
			u := members[4+j%5]
			if j >= 10 {
				u = members[j%(2+i%3)]
				if i%2 == 1 && j == 15 {
					u = alice
				}
			}
			txn++
			if _, err := svc.Send(ctx, rooms.Viewer{User: u, Device: "D"}, room, "m.room.message", fmt.Sprint("t", txn), json.RawMessage(`{"body":"x"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	filters := storage.NewFilters(pool)
	const filter = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}`
	for _, c := range []struct {
		name  string
		store syncer.Store
		rooms []id.RoomID
	}{
		{"prefetch", storage.NewSync(st), ids},
		{"per room", noPrefetch{Sync: storage.NewSync(st)}, ids},
		{"whole state per room", perRoomReads{Sync: storage.NewSync(st)}, ids},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := syncer.New(syncer.Config{}, filters, c.store, syncer.NewNotifier(nil), svc, slog.Default())
			resp, err := s.Sync(ctx, syncer.Request{User: alice, Device: "D", Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			for _, room := range c.rooms {
				jr := resp.Rooms.Join[room]
				if jr == nil {
					t.Fatalf("room %s not in the sync", room)
				}
				want := map[string]bool{string(alice): true}
				for _, raw := range jr.Timeline.Events {
					var ev struct{ Sender string }
					if err := json.Unmarshal(raw, &ev); err != nil {
						t.Fatal(err)
					}
					want[ev.Sender] = true
				}
				have := map[string]bool{}
				for _, raw := range jr.State.Events {
					var ev struct {
						Type     string
						StateKey *string `json:"state_key"`
					}
					if err := json.Unmarshal(raw, &ev); err != nil {
						t.Fatal(err)
					}
					if ev.Type == auth.TypeMember {
						have[*ev.StateKey] = true
					}
				}
				if !maps.Equal(have, want) {
					t.Errorf("room %s: members in the state %v, want the senders and the user %v", room, slices.Sorted(maps.Keys(have)), slices.Sorted(maps.Keys(want)))
				}
				if s := jr.Summary; s.Joined == nil || *s.Joined != len(members)+1 || len(s.Heroes) != 5 {
					t.Errorf("room %s: summary joined %v heroes %v, want %d and 5", room, s.Joined, s.Heroes, len(members)+1)
				}
			}
		})
	}
}
