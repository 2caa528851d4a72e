package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

const roomServer = id.ServerName("rooms.test")

// newRoomService is the rooms domain on a real store.
func newRoomService(t testing.TB) (*rooms.Service, *storage.Rooms) {
	t.Helper()
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	st := storage.NewRooms(pgtest.NewPool(t))
	return rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default()), st
}

// uniqueUser returns a user id no other test uses: the same for the same
// test and name, never one an earlier test had (a finished test's
// *testing.T may be reused at the same address, so the address alone is
// not enough: each test gets a number of its own on first use).
func uniqueUser(t testing.TB, name string) id.UserID {
	t.Helper()
	return id.NewUserID(fmt.Sprintf("%s_%d", name, testNumber(t)), roomServer)
}

var testNumbers = struct {
	sync.Mutex
	next int
	of   map[testing.TB]int
}{of: map[testing.TB]int{}}

func testNumber(t testing.TB) int {
	testNumbers.Lock()
	defer testNumbers.Unlock()
	if n, ok := testNumbers.of[t]; ok {
		return n
	}
	testNumbers.next++
	n := testNumbers.next
	testNumbers.of[t] = n
	t.Cleanup(func() {
		testNumbers.Lock()
		defer testNumbers.Unlock()
		delete(testNumbers.of, t)
	})
	return n
}

func TestAppendSequencesAreGapFreeUnderConcurrency(t *testing.T) {
	svc, st := newRoomService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	const senders, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := rooms.Viewer{User: alice, Device: id.DeviceID(fmt.Sprintf("D%d", g))}
			for i := range each {
				_, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprintf("t%d", i), json.RawMessage(`{"body":"hi","msgtype":"m.text"}`))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs, err := st.Timeline(ctx, room, 0, rooms.Forward, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := int(before.Seq) + senders*each
	if len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: sequence has a gap", i, e.Seq)
		}
		if i > 0 && e.StreamPos <= evs[i-1].StreamPos {
			t.Fatalf("stream positions not increasing with seq: %d then %d", evs[i-1].StreamPos, e.StreamPos)
		}
		if i > 0 && !slices.Contains(e.Event.PrevEventIDs(), evs[i-1].Event.EventID()) {
			t.Fatalf("event %d does not build on event %d", e.Seq, evs[i-1].Seq)
		}
	}
	pos, err := st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1].StreamPos; pos < last {
		t.Fatalf("current stream position %d is behind the last event's %d", pos, last)
	}
}

func TestAppendDeduplicatesTransactionIDs(t *testing.T) {
	svc, st := newRoomService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	body := json.RawMessage(`{"body":"once"}`)
	d1 := rooms.Viewer{User: alice, Device: "D1"}
	first, err := svc.Send(ctx, d1, room, "m.room.message", "txn", body)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		v       rooms.Viewer
		txn     string
		samesID bool
	}{
		{"same device and txn returns the first event", d1, "txn", true},
		{"another device with the same txn sends anew", rooms.Viewer{User: alice, Device: "D2"}, "txn", false},
		{"same device, other txn sends anew", d1, "txn2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svc.Send(ctx, tc.v, room, "m.room.message", tc.txn, body)
			if err != nil {
				t.Fatal(err)
			}
			if (got == first) != tc.samesID {
				t.Fatalf("event id %s, first %s, want same=%v", got, first, tc.samesID)
			}
		})
	}
	se, err := st.Event(ctx, room, first)
	if err != nil {
		t.Fatal(err)
	}
	if se.TxnID != "txn" || se.TxnDevice != "D1" {
		t.Fatalf("stored txn %q/%q, want txn/D1", se.TxnDevice, se.TxnID)
	}
}

func TestHeadSurvivesACacheMiss(t *testing.T) {
	svc, st := newRoomService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	name := "kitchen"
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Name: &name, Preset: rooms.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := st.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	// A second store on the same database has an empty cache.
	fresh := storage.NewRooms(pgtest.NewPool(t))
	loaded, err := fresh.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Seq != cached.Seq || len(loaded.State) != len(cached.State) {
		t.Fatalf("loaded head seq %d with %d state entries, cached %d with %d", loaded.Seq, len(loaded.State), cached.Seq, len(cached.State))
	}
	for k, ev := range cached.State {
		if got := loaded.State[k]; got == nil || got.EventID() != ev.EventID() {
			t.Fatalf("state %v differs after reload", k)
		}
	}
	// State before the name event (the last one) has no name.
	st2, err := fresh.StateBefore(ctx, room, cached.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Get("m.room.name", "") != nil || st2.Get("m.room.join_rules", "") == nil {
		t.Fatalf("state before the name event: name %v, join rules %v", st2.Get("m.room.name", ""), st2.Get("m.room.join_rules", ""))
	}
}

func TestSyncReads(t *testing.T) {
	svc, st := newRoomService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	start, err := st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprint(i), json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	end, err := st.CurrentStreamPos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("events between two positions, latest first cut", func(t *testing.T) {
		evs, limited, err := st.RoomEventsBetween(ctx, room, start, end, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !limited || len(evs) != 2 || evs[0].Seq > evs[1].Seq || evs[1].StreamPos > end {
			t.Fatalf("got %d events (limited %v)", len(evs), limited)
		}
		if evs[1].Event.Type() != "m.room.message" {
			t.Fatalf("last event is %s", evs[1].Event.Type())
		}
	})
	t.Run("membership changes name the room", func(t *testing.T) {
		changes, err := st.MembershipChanges(ctx, alice, start, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 1 || changes[0].RoomID != room || changes[0].Membership != "join" {
			t.Fatalf("changes %+v", changes)
		}
		none, err := st.MembershipChanges(ctx, alice, end, end+100)
		if err != nil {
			t.Fatal(err)
		}
		if len(none) != 0 {
			t.Fatalf("changes after the end: %+v", none)
		}
	})
}

func TestConcurrentRetriesOfOneTransactionAgree(t *testing.T) {
	svc, _ := newRoomService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	ids := make([]id.EventID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "same", json.RawMessage(`{}`))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("attempt %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("attempt %d got %s, attempt 0 %s", i, ids[i], ids[0])
		}
	}
}

func TestVisibleToAndStrippedState(t *testing.T) {
	svc, _ := newRoomService(t)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	name := "secret club"
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Name: &name, InitialState: []rooms.StateInput{
		{Type: "m.room.history_visibility", Content: json.RawMessage(`{"history_visibility":"joined"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "1", json.RawMessage(`{"body":"before"}`)); err != nil {
		t.Fatal(err)
	}
	if err := svc.Invite(ctx, alice, room, bob, ""); err != nil {
		t.Fatal(err)
	}
	stripped, err := svc.StrippedState(ctx, room, bob)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, e := range stripped {
		types[e.Type+"|"+e.StateKey] = true
	}
	for _, want := range []string{"m.room.create|", "m.room.join_rules|", "m.room.name|", "m.room.member|" + string(bob)} {
		if !types[want] {
			t.Errorf("stripped state lacks %s: %v", want, types)
		}
	}
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "2", json.RawMessage(`{"body":"after"}`)); err != nil {
		t.Fatal(err)
	}
	page, err := svc.Messages(ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Forward, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	visible, err := svc.VisibleTo(ctx, bob, room, page.Chunk)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, se := range visible {
		var c struct{ Body string }
		_ = json.Unmarshal(se.Event.Content(), &c)
		if se.Event.Type() == "m.room.message" {
			bodies = append(bodies, c.Body)
		}
	}
	if !slices.Equal(bodies, []string{"after"}) || len(visible) >= len(page.Chunk) {
		t.Fatalf("bob sees %v of %d events", bodies, len(page.Chunk))
	}
}
