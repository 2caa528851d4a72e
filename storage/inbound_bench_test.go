package storage_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// BenchmarkInboundPDUs measures the inbound pipeline on one room: each
// PDU a message on the previous one, verified, checked three times and
// persisted (go test ./storage -bench InboundPDUs -run ^$).
func BenchmarkInboundPDUs(b *testing.B) {
	h := newFedHarness(b)
	room, _, bob, join := h.publicRoom("")
	hd := h.head(room)
	evs := make([]*event.Event, 0, b.N)
	prev := join
	for i := range b.N {
		ev := h.remoteEvent(hd, bob, "m.room.message", nil, fmt.Sprintf(`{"body":"%d","msgtype":"m.text"}`, i), []*event.Event{prev}, hd.State)
		evs = append(evs, ev)
		prev = ev
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, ev := range evs {
		if err := h.receive(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pdus/s")
}

// BenchmarkImportRoom10kMembers measures joining a room of 10,000 members
// over federation: verifying, checking and storing the send_join answer
// (go test ./storage -bench ImportRoom -benchtime 1x -run ^$).
func BenchmarkImportRoom10kMembers(b *testing.B) {
	members := 10000
	if testing.Short() {
		members = 1000
	}
	for range b.N {
		b.StopTimer()
		h, v, join, state, chain := largeRoomJoin(b, members)
		b.ReportAllocs()
		b.StartTimer()
		if err := h.in.ImportRoom(h.ctx, v, join, state, chain); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := len(h.head(join.RoomID()).State); got != len(state)+1 {
			b.Fatalf("current state has %d entries, want %d", got, len(state)+1)
		}
	}
}

// largeRoomJoin is a remote room of members joined users and dave's join
// to it, as a send_join answer brings them: the harness, the room's
// version, the join, the room's state and its auth chain.
func largeRoomJoin(b *testing.B, members int) (*fedHarness, roomversion.Version, *event.Event, []*event.Event, []*event.Event) {
	b.Helper()
	h := newFedHarness(b)
	roomID, _, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	// One map for the whole build (With would copy it each time); the
	// join's auth events are the same few state events throughout.
	st = maps.Clone(st)
	for i := range members {
		u := id.NewUserID(fmt.Sprintf("m%d", i), inRemote)
		ev := h.build(inRemote, v, roomID, u, auth.TypeMember, strp(string(u)), `{"membership":"join"}`, []*event.Event{last}, st)
		st[auth.StateKey{Type: auth.TypeMember, StateKey: string(u)}] = ev
		last = ev
	}
	dave := uniqueUser(b, "dave")
	join := h.build(roomServer, v, roomID, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
	state := stateList(st)
	return h, v, join, state, h.remote.authChain(append(state, join))
}
