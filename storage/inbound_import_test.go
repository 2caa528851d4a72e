package storage_test

// Tests of rooms joined over federation and of invites to rooms this
// server is not in.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// remoteRoom builds a public room that lives on the remote server: its
// create event, bob's join, power levels, join rules and history
// visibility, each on the previous one. It returns the room, its state and
// the last event.
func (h *fedHarness) remoteRoom(version string) (id.RoomID, id.UserID, rooms.State, *event.Event) {
	h.t.Helper()
	v, ok := roomversion.Lookup(roomversion.ID(version))
	if !ok {
		h.t.Fatalf("no room version %s", version)
	}
	bob := id.NewUserID(fmt.Sprintf("bob_%d", testNumber(h.t)), inRemote)
	var room id.RoomID
	if !v.CreateEventDefinesRoomID {
		room = id.RoomID(fmt.Sprintf("!remote%d:%s", roomCounter.Add(1)+time.Now().UnixNano(), inRemote))
	}
	createContent := fmt.Sprintf(`{"room_version":%q}`, version)
	if version == "1" || version == "10" {
		createContent = fmt.Sprintf(`{"room_version":%q,"creator":%q}`, version, bob)
	}
	create := h.build(inRemote, v, room, bob, auth.TypeCreate, strp(""), createContent, nil, rooms.State{})
	if v.CreateEventDefinesRoomID {
		room = event.RoomIDOfCreate(create)
	}
	st := rooms.State{}.With(create)
	last := create
	add := func(typ, key, content string) {
		ev := h.build(inRemote, v, room, bob, typ, strp(key), content, []*event.Event{last}, st)
		st = st.With(ev)
		last = ev
	}
	add(auth.TypeMember, string(bob), `{"membership":"join"}`)
	if v.CreateEventDefinesRoomID {
		add(auth.TypePowerLevels, "", `{"users":{}}`) // v12: the creator's level is not listed
	} else {
		add(auth.TypePowerLevels, "", fmt.Sprintf(`{"users":{%q:100}}`, bob))
	}
	add(auth.TypeJoinRules, "", `{"join_rule":"public"}`)
	add("m.room.history_visibility", "", `{"history_visibility":"shared"}`)
	return room, bob, st, last
}

var roomCounter atomic.Int64

func stateList(st rooms.State) []*event.Event {
	var out []*event.Event
	for _, ev := range st {
		out = append(out, ev)
	}
	return out
}

func TestImportRoomJoinedOverFederation(t *testing.T) {
	for _, version := range []string{"1", "10", "11", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			h := newFedHarness(t)
			room, bob, st, last := h.remoteRoom(version)
			v := st.Get(auth.TypeCreate, "").Version()
			dave := uniqueUser(t, "dave")
			join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
			chain := h.remote.authChain(append(stateList(st), join))
			if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), chain); err != nil {
				for _, ev := range st {
					if k := h.known(room, ev.EventID()); k != nil && k.Rejected != "" {
						t.Logf("%s %s rejected: %s", ev.Type(), ev.EventID(), k.Rejected)
					}
				}
				t.Fatal(err)
			}
			hd := h.head(room)
			if len(hd.State) != len(st)+1 || hd.State.Membership(string(dave)) != "join" || hd.State.Membership(string(bob)) != "join" {
				t.Fatalf("current state has %d entries (dave %q), want the room's %d and dave's join", len(hd.State), hd.State.Membership(string(dave)), len(st))
			}
			if tl := h.timeline(room); !slices.Equal(tl, []id.EventID{join.EventID()}) {
				t.Fatalf("timeline %v, want only the join", tl)
			}
			if k := h.known(room, st.Get(auth.TypeCreate, "").EventID()); k == nil || !k.Outlier {
				t.Fatalf("the create event is stored as %+v, want an outlier", k)
			}
			joined, err := h.st.RoomsOf(h.ctx, dave, "join")
			if err != nil || !slices.Contains(joined, room) {
				t.Fatalf("RoomsOf(dave) = %v, %v", joined, err)
			}
			if !h.notifier.told(join.EventID()) {
				t.Fatal("the notifier was not told about the join")
			}
			// The room's next events arrive over /send and build on it.
			msg := h.build(inRemote, v, room, bob, "m.room.message", nil, `{"body":"welcome"}`, []*event.Event{join}, hd.State)
			h.mustReceive(msg)
			if tl := h.timeline(room); !slices.Equal(tl, []id.EventID{join.EventID(), msg.EventID()}) {
				t.Fatalf("timeline %v, want the join and the message", tl)
			}
			// The joined user's visible history starts at the join.
			page, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Chunk) != 2 {
				t.Fatalf("/messages gives %d events, want 2", len(page.Chunk))
			}
			// Importing again (a retried join) changes nothing.
			if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), chain); err != nil {
				t.Fatal(err)
			}
			if n := len(h.timeline(room)); n != 2 {
				t.Fatalf("timeline has %d events after a second import, want 2", n)
			}
		})
	}
}

func TestImportRoomChecksTheAnswer(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	// The room is invite-only: a join without an invite fails the rules.
	rules := h.build(inRemote, v, room, bob, auth.TypeJoinRules, strp(""), `{"join_rule":"invite"}`, []*event.Event{last}, st)
	st = st.With(rules)
	// A forged topic in the answer is dropped.
	real := h.remote.key
	h.remote.key, _ = signing.Generate(real.ID())
	forged := h.build(inRemote, v, room, bob, "m.room.topic", strp(""), `{"topic":"forged"}`, []*event.Event{rules}, st)
	h.remote.key = real
	dave := uniqueUser(t, "dave")
	join := h.build(roomServer, v, room, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{rules}, st)
	answer := append(stateList(st), forged)
	err := h.in.ImportRoom(h.ctx, v, join, answer, h.remote.authChain(append(stateList(st), join)))
	if !errors.Is(err, rooms.ErrPDURejected) {
		t.Fatalf("ImportRoom = %v, want ErrPDURejected", err)
	}
	if h.known(room, forged.EventID()) != nil {
		t.Fatal("an event with a forged signature was stored")
	}
	if slices.Contains(h.timeline(room), join.EventID()) {
		t.Fatal("a join that fails the rules is in the timeline")
	}
}

func TestRemoteInviteShowsAndCanBeRejected(t *testing.T) {
	h := newFedHarness(t)
	room, bob, st, last := h.remoteRoom("11")
	v := st.Get(auth.TypeCreate, "").Version()
	erin := uniqueUser(t, "erin")
	invite := h.build(inRemote, v, room, bob, auth.TypeMember, strp(string(erin)), `{"membership":"invite"}`, []*event.Event{last}, st)
	stripped := []json.RawMessage{json.RawMessage(`{"type":"m.room.name","state_key":"","sender":"` + string(bob) + `","content":{"name":"Far away"}}`)}
	if err := h.in.StoreRemoteMembership(h.ctx, invite, stripped); err != nil {
		t.Fatal(err)
	}
	invited, err := h.st.RoomsOf(h.ctx, erin, "invite")
	if err != nil || !slices.Contains(invited, room) {
		t.Fatalf("RoomsOf(erin, invite) = %v, %v", invited, err)
	}
	ev, gotStripped, err := h.in.RemoteMembership(h.ctx, room, erin)
	if err != nil || ev == nil || ev.EventID() != invite.EventID() {
		t.Fatalf("RemoteMembership = %v, %v", ev, err)
	}
	if len(gotStripped) != 1 || !json.Valid(gotStripped[0]) {
		t.Fatalf("stripped state %s, want the name event", gotStripped)
	}
	if err := event.Verify(h.ctx, ev, func(_ context.Context, s id.ServerName, k string, _ int64) (ed25519.PublicKey, error) {
		return h.remote.key.Public(), nil
	}); err != nil {
		t.Fatalf("the stored invite no longer verifies: %v", err)
	}
	changes, err := h.st.MembershipChanges(h.ctx, erin, 0, 1<<62)
	if err != nil || len(changes) != 1 || changes[0].Membership != "invite" {
		t.Fatalf("membership changes %+v, %v; want the invite", changes, err)
	}
	// Erin rejects it: the leave goes through the inviting server and is
	// stored the same way.
	leave := h.build(roomServer, v, room, erin, auth.TypeMember, strp(string(erin)), `{"membership":"leave"}`, []*event.Event{invite}, st.With(invite))
	if err := h.in.StoreRemoteMembership(h.ctx, leave, nil); err != nil {
		t.Fatal(err)
	}
	if invited, _ := h.st.RoomsOf(h.ctx, erin, "invite"); slices.Contains(invited, room) {
		t.Fatal("the rejected invite is still pending")
	}
	// Then erin joins after all: the import replaces the stub's state.
	join := h.build(roomServer, v, room, erin, auth.TypeMember, strp(string(erin)), `{"membership":"join"}`, []*event.Event{last}, st)
	if err := h.in.ImportRoom(h.ctx, v, join, stateList(st), h.remote.authChain(append(stateList(st), join))); err != nil {
		t.Fatal(err)
	}
	if hd := h.head(room); hd.State.Membership(string(erin)) != "join" || hd.State.Get(auth.TypeCreate, "") == nil {
		t.Fatal("the joined room lacks its state")
	}
}
