package storage_test

// Tests of the inbound PDU pipeline (rooms.Inbound) on the real store:
// events signed by a fake remote server's key, received into rooms this
// server holds.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/rooms/stateres"
)

func TestInboundLinearEventsJoinTheTimeline(t *testing.T) {
	for _, version := range []string{"1", "10", "11", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			h := newFedHarness(t)
			room, _, bob, join := h.publicRoom(version)
			hd := h.head(room)
			if got := hd.State.Membership(string(bob)); got != "join" {
				t.Fatalf("bob's membership %q, want join", got)
			}
			if len(hd.Extremities) != 1 || hd.Extremities[0].EventID() != join.EventID() {
				t.Fatalf("extremities %v, want the join", extremityIDsOf(hd))
			}
			msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"hello","msgtype":"m.text"}`, hd.Extremities, hd.State)
			h.mustReceive(msg)
			tl := h.timeline(room)
			if tl[len(tl)-2] != join.EventID() || tl[len(tl)-1] != msg.EventID() {
				t.Fatalf("timeline ends %v, want join then message", tl[len(tl)-2:])
			}
			if !h.notifier.told(join.EventID()) || !h.notifier.told(msg.EventID()) {
				t.Fatal("the notifier was not told about the accepted events")
			}
			joined, err := h.st.RoomsOf(h.ctx, bob, "join")
			if err != nil || !slices.Contains(joined, room) {
				t.Fatalf("RoomsOf(bob) = %v, %v; want the room", joined, err)
			}
			// A retry of the same PDU is accepted and changes nothing.
			h.mustReceive(msg)
			if n := len(h.timeline(room)); n != len(tl) {
				t.Fatalf("timeline has %d events after a retry, want %d", n, len(tl))
			}
			// The local server builds on the remote event.
			if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: hd.State.Get(auth.TypeCreate, "").Sender(), Device: "D"}, room,
				"m.room.message", "t-"+string(room), json.RawMessage(`{"body":"hi bob","msgtype":"m.text"}`)); err != nil {
				t.Fatal(err)
			}
			if x := h.head(room).Extremities; len(x) != 1 || x[0].PrevEventIDs()[0] != msg.EventID() {
				t.Fatal("the local event does not follow the remote one")
			}
		})
	}
}

func extremityIDsOf(hd *rooms.Head) []id.EventID {
	var out []id.EventID
	for _, x := range hd.Extremities {
		out = append(out, x.EventID())
	}
	return out
}

func TestInboundRejectsEventsFailingAuth(t *testing.T) {
	h := newFedHarness(t)
	room, _, _, _ := h.publicRoom("")
	hd := h.head(room)
	carol := id.NewUserID("carol", inRemote) // never joined
	msg := h.remoteEvent(hd, carol, "m.room.message", nil, `{"body":"spam","msgtype":"m.text"}`, hd.Extremities, hd.State)
	err := h.receive(msg)
	if !errors.Is(err, rooms.ErrPDURejected) {
		t.Fatalf("receive = %v, want ErrPDURejected", err)
	}
	k := h.known(room, msg.EventID())
	if k == nil || k.Rejected == "" {
		t.Fatalf("the rejected event is not remembered as rejected: %+v", k)
	}
	if slices.Contains(h.timeline(room), msg.EventID()) || h.notifier.told(msg.EventID()) {
		t.Fatal("a rejected event reached clients")
	}
	if x := extremityIDsOf(h.head(room)); slices.Contains(x, msg.EventID()) {
		t.Fatal("a rejected event became a forward extremity")
	}
	// Received again: rejected again without fetching anything.
	calls := len(h.remote.calls)
	if err := h.receive(msg); !errors.Is(err, rooms.ErrPDURejected) {
		t.Fatalf("second receive = %v, want ErrPDURejected", err)
	}
	if len(h.remote.calls) != calls {
		t.Fatal("a known rejected event was fetched again")
	}
}

func TestInboundDropsForgedSignatures(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, _ := h.publicRoom("")
	hd := h.head(room)
	forger, err := signing.Generate(h.remote.key.ID()) // same key id, other key
	if err != nil {
		t.Fatal(err)
	}
	real := h.remote.key
	h.remote.key = forger
	ev := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"x"}`, hd.Extremities, hd.State)
	h.remote.key = real
	if err := h.receive(ev); !errors.Is(err, rooms.ErrPDUDropped) {
		t.Fatalf("receive = %v, want ErrPDUDropped", err)
	}
	if h.known(room, ev.EventID()) != nil {
		t.Fatal("an event with a forged signature was stored")
	}
	// An event for a room this server does not know.
	other := h.build(inRemote, hd.Version, "!unknown:remote.test", bob, "m.room.message", nil, `{}`, hd.Extremities, hd.State)
	if err := h.receive(other); !errors.Is(err, rooms.ErrRoomNotFound) {
		t.Fatalf("receive in an unknown room = %v, want ErrRoomNotFound", err)
	}
}

func TestInboundRedactsOnContentHashMismatch(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, _ := h.publicRoom("11")
	hd := h.head(room)
	msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"original","msgtype":"m.text"}`, hd.Extremities, hd.State)
	// Change the content after signing: signatures cover the redacted
	// event only, so they still verify; the content hash does not.
	obj := msg.JSON().With("content", canonicaljson.ObjectValue().With("body", canonicaljson.StringValue("tampered")))
	tampered, err := event.Parse(hd.Version, canonicaljson.Encode(obj))
	if err != nil {
		t.Fatal(err)
	}
	if tampered.EventID() != msg.EventID() {
		t.Fatal("the event id changed with the content")
	}
	h.mustReceive(tampered)
	se, err := h.st.Event(h.ctx, room, msg.EventID())
	if err != nil {
		t.Fatal(err)
	}
	if string(se.Event.Content()) != "{}" {
		t.Fatalf("stored content %s, want the redacted {}", se.Event.Content())
	}
}

func TestInboundSoftFailsABannedUsersLateMessage(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, join := h.publicRoom("")
	before := h.head(room)
	if err := h.svc.Ban(h.ctx, alice, room, bob, "bye"); err != nil {
		t.Fatal(err)
	}
	// bob's server sends a message on the graph before the ban: allowed by
	// the state before it, not by current state.
	msg := h.remoteEvent(before, bob, "m.room.message", nil, `{"body":"evading","msgtype":"m.text"}`, []*event.Event{join}, before.State)
	h.mustReceive(msg)
	k := h.known(room, msg.EventID())
	if k == nil || !k.SoftFailed || k.Rejected != "" {
		t.Fatalf("stored as %+v, want soft-failed", k)
	}
	if slices.Contains(h.timeline(room), msg.EventID()) || h.notifier.told(msg.EventID()) {
		t.Fatal("a soft-failed event reached clients")
	}
	after := h.head(room)
	if x := extremityIDsOf(after); len(x) != 1 || x[0] == msg.EventID() {
		t.Fatalf("extremities %v: the soft-failed event must not be one", x)
	}
	if after.State.Membership(string(bob)) != "ban" {
		t.Fatal("bob is no longer banned")
	}
}

func TestInboundResolvesConcurrentPowerLevelChanges(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	// alice makes bob an admin, then both change the power levels at
	// once: alice locally, bob on his server from the same point.
	if _, err := h.svc.SetState(h.ctx, alice, room, auth.TypePowerLevels, "",
		json.RawMessage(fmt.Sprintf(`{"users":{%q:100,%q:100},"users_default":0}`, alice, bob))); err != nil {
		t.Fatal(err)
	}
	fork := h.head(room)
	if _, err := h.svc.SetState(h.ctx, alice, room, auth.TypePowerLevels, "",
		json.RawMessage(fmt.Sprintf(`{"users":{%q:100,%q:100},"users_default":10}`, alice, bob))); err != nil {
		t.Fatal(err)
	}
	local := h.head(room)
	theirs := h.remoteEvent(fork, bob, auth.TypePowerLevels, strp(""),
		fmt.Sprintf(`{"users":{%q:100,%q:100},"users_default":20}`, alice, bob), fork.Extremities, fork.State)
	h.mustReceive(theirs)
	hd := h.head(room)
	x := extremityIDsOf(hd)
	if len(x) != 2 || !slices.Contains(x, theirs.EventID()) || !slices.Contains(x, local.Extremities[0].EventID()) {
		t.Fatalf("extremities %v, want both branches", x)
	}
	// Current state is the resolution of the two branches, computed here
	// independently.
	sets := []stateres.StateMap{stateMapOf(local.State), stateMapOf(fork.State.With(theirs))}
	want, err := stateres.Resolve(h.ctx, hd.Version, sets, knownSource{h: h, room: room})
	if err != nil {
		t.Fatal(err)
	}
	plKey := auth.StateKey{Type: auth.TypePowerLevels}
	if got := hd.State[plKey].EventID(); got != want[plKey] {
		t.Fatalf("current power levels %s, want the resolution's %s", got, want[plKey])
	}
	// The next local event names both branches and closes the fork.
	if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "t", json.RawMessage(`{"body":"x"}`)); err != nil {
		t.Fatal(err)
	}
	last := h.head(room).Extremities
	if len(last) != 1 || len(last[0].PrevEventIDs()) != 2 {
		t.Fatalf("the local event after the fork has prev_events %v, want both branches", last[0].PrevEventIDs())
	}
}

func stateMapOf(st rooms.State) stateres.StateMap {
	m := stateres.StateMap{}
	for k, ev := range st {
		m[k] = ev.EventID()
	}
	return m
}

type knownSource struct {
	h    *fedHarness
	room id.RoomID
}

func (s knownSource) Events(ctx context.Context, ids []id.EventID) (map[id.EventID]auth.Event, error) {
	k, err := s.h.st.KnownEvents(ctx, s.room, ids)
	if err != nil {
		return nil, err
	}
	out := map[id.EventID]auth.Event{}
	for eid, e := range k {
		out[eid] = e.Event
	}
	return out, nil
}

func TestInboundBanRacingAMessage(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, join := h.publicRoom("")
	fork := h.head(room)
	// bob's server sends two messages on the pre-ban graph, the second
	// naming the first; alice bans bob meanwhile.
	if err := h.svc.Ban(h.ctx, alice, room, bob, ""); err != nil {
		t.Fatal(err)
	}
	m1 := h.remoteEvent(fork, bob, "m.room.message", nil, `{"body":"1"}`, []*event.Event{join}, fork.State)
	m2 := h.remoteEvent(fork, bob, "m.room.message", nil, `{"body":"2"}`, []*event.Event{m1}, fork.State)
	h.mustReceive(m1)
	h.mustReceive(m2)
	for _, m := range []*event.Event{m1, m2} {
		if k := h.known(room, m.EventID()); k == nil || !k.SoftFailed {
			t.Fatalf("%s stored as %+v, want soft-failed", m.EventID(), k)
		}
	}
	if h.head(room).State.Membership(string(bob)) != "ban" {
		t.Fatal("the ban lost")
	}
}

func TestInboundFetchesMissingPrevEvents(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, join := h.publicRoom("")
	hd := h.head(room)
	m1 := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"1"}`, []*event.Event{join}, hd.State)
	m2 := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"2"}`, []*event.Event{m1}, hd.State)
	m3 := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"3"}`, []*event.Event{m2}, hd.State)
	h.remote.missing = []*event.Event{m2, m1} // any order: the pipeline sorts by depth
	h.mustReceive(m3)
	tl := h.timeline(room)
	if got := tl[len(tl)-3:]; !slices.Equal(got, []id.EventID{m1.EventID(), m2.EventID(), m3.EventID()}) {
		t.Fatalf("timeline ends %v, want m1 m2 m3", got)
	}
	if h.remote.called("get_missing_events") != 1 {
		t.Fatalf("get_missing_events called %d times, want 1", h.remote.called("get_missing_events"))
	}
}

func TestInboundFetchesTheStateWhenTheGapCannotBeClosed(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, join := h.publicRoom("")
	hd := h.head(room)
	// bob's server changed his display name and sent messages we never
	// got.
	topic := h.remoteEvent(hd, bob, auth.TypeMember, strp(string(bob)), `{"membership":"join","displayname":"Bob"}`, []*event.Event{join}, hd.State)
	st := hd.State.With(topic)
	m1 := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"1"}`, []*event.Event{topic}, st)
	m2 := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"2"}`, []*event.Event{m1}, st)
	h.remote.missingErr = errors.New("get_missing_events: 500")
	h.mustReceive(m2)
	if k := h.known(room, m1.EventID()); k == nil || !k.Outlier {
		t.Fatalf("the missing prev event is stored as %+v, want an outlier", k)
	}
	if k := h.known(room, topic.EventID()); k == nil || !k.Outlier {
		t.Fatalf("the state at the gap is stored as %+v, want an outlier", k)
	}
	tl := h.timeline(room)
	if tl[len(tl)-1] != m2.EventID() || slices.Contains(tl, m1.EventID()) || slices.Contains(tl, topic.EventID()) {
		t.Fatalf("timeline %v: want m2 last and no outliers", tl)
	}
	if got := h.head(room).State.Get(auth.TypeMember, string(bob)); got == nil || got.EventID() != topic.EventID() {
		t.Fatal("current state lacks the member event fetched at the gap")
	}
	if h.remote.called("state_ids") == 0 {
		t.Fatal("the state at the gap was not asked for")
	}
}

func TestInboundFetchesMissingAuthEvents(t *testing.T) {
	h := newFedHarness(t)
	room, _, _, join := h.publicRoom("")
	hd := h.head(room)
	// carol joins on bob's server; we miss her join and see her message.
	carol := id.NewUserID("carol", inRemote)
	cj := h.remoteEvent(hd, carol, auth.TypeMember, strp(string(carol)), `{"membership":"join"}`, []*event.Event{join}, hd.State)
	st := hd.State.With(cj)
	msg := h.remoteEvent(hd, carol, "m.room.message", nil, `{"body":"hi"}`, []*event.Event{cj}, st)
	h.remote.missing = []*event.Event{cj}
	h.mustReceive(msg)
	if h.remote.called("event_auth") == 0 {
		t.Fatal("the missing auth event was not fetched with event_auth")
	}
	tl := h.timeline(room)
	if tl[len(tl)-1] != msg.EventID() {
		t.Fatal("the message is not in the timeline")
	}
	if h.head(room).State.Membership(string(carol)) != "join" {
		t.Fatal("carol's join is not current state")
	}
}

func TestInboundOneRoomInOrderUnderConcurrency(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, join := h.publicRoom("")
	hd := h.head(room)
	prev := join
	var chain []*event.Event
	for i := range 20 {
		ev := h.remoteEvent(hd, bob, "m.room.message", nil, fmt.Sprintf(`{"body":"%d"}`, i), []*event.Event{prev}, hd.State)
		chain = append(chain, ev)
		prev = ev
	}
	// Two transactions deliver the chain at once; the room's events are
	// processed one at a time, so every event ends in the timeline once
	// and the graph has one extremity.
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(chain))
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range chain {
				errs <- h.receive(ev)
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
	tl := h.timeline(room)
	if got := tl[len(tl)-len(chain):]; !slices.Equal(got, idsOf(chain)) {
		t.Fatalf("timeline ends %v, want the chain in order", got)
	}
	if x := extremityIDsOf(h.head(room)); len(x) != 1 || x[0] != chain[len(chain)-1].EventID() {
		t.Fatalf("extremities %v, want the chain's last", x)
	}
}

func idsOf(evs []*event.Event) []id.EventID {
	var out []id.EventID
	for _, ev := range evs {
		out = append(out, ev.EventID())
	}
	return out
}

func TestInboundDropsEventsOfRoomsThisServerIsNotIn(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	if err := h.svc.Leave(h.ctx, alice, room, ""); err != nil {
		t.Fatal(err)
	}
	hd := h.head(room)
	msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"anyone?"}`, hd.Extremities, hd.State)
	if err := h.receive(msg); !errors.Is(err, rooms.ErrPDUDropped) {
		t.Fatalf("receive = %v, want ErrPDUDropped", err)
	}
	if h.known(room, msg.EventID()) != nil {
		t.Fatal("an event of a room we left was stored")
	}
}

func TestInboundHonoursTheServerACL(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	if _, err := h.svc.SetState(h.ctx, alice, room, "m.room.server_acl", "",
		json.RawMessage(`{"allow":["*"],"deny":["remote.test"],"allow_ip_literals":false}`)); err != nil {
		t.Fatal(err)
	}
	hd := h.head(room)
	msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"denied"}`, hd.Extremities, hd.State)
	if err := h.receive(msg); !errors.Is(err, rooms.ErrPDUDropped) {
		t.Fatalf("receive = %v, want ErrPDUDropped", err)
	}
	if h.known(room, msg.EventID()) != nil {
		t.Fatal("an event from a denied server was stored")
	}
}

func TestInboundFetchesALongGapInRounds(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, join := h.publicRoom("")
	hd := h.head(room)
	// bob's server sent 130 messages we never got; the 131st arrives.
	prev := join
	var chain []*event.Event
	for i := range 131 {
		ev := h.remoteEvent(hd, bob, "m.room.message", nil, fmt.Sprintf(`{"body":"%d"}`, i), []*event.Event{prev}, hd.State)
		chain = append(chain, ev)
		prev = ev
	}
	h.mustReceive(chain[len(chain)-1])
	tl := h.timeline(room)
	if got := tl[len(tl)-len(chain):]; !slices.Equal(got, idsOf(chain)) {
		t.Fatalf("the timeline does not end with the whole chain in order (%d events)", len(tl))
	}
	if n := h.remote.called("get_missing_events"); n != 3 {
		t.Fatalf("get_missing_events called %d times, want 3 (50 + 50 + 30)", n)
	}
	if h.remote.called("state_ids") != 0 {
		t.Fatal("the state was fetched although the gap could be closed")
	}
}

func TestInboundDropsAnEventIDTakenInAnotherRoom(t *testing.T) {
	h := newFedHarness(t)
	roomA, _, bob, _ := h.publicRoom("1")
	roomB, _, _, _ := h.publicRoom("1")
	hdA, hdB := h.head(roomA), h.head(roomB)
	msgA := h.remoteEvent(hdA, bob, "m.room.message", nil, `{"body":"in A"}`, hdA.Extremities, hdA.State)
	h.mustReceive(msgA)
	// Room versions 1 and 2 let the sender choose event ids: the same id
	// for another event in room B.
	msgB := h.remoteEvent(hdB, bob, "m.room.message", nil, `{"body":"in B"}`, hdB.Extremities, hdB.State)
	obj, err := event.HashAndSign(hdB.Version, msgB.JSON().With("event_id", canonicaljson.StringValue(string(msgA.EventID()))), inRemote, h.remote.key)
	if err != nil {
		t.Fatal(err)
	}
	reused, err := event.Parse(hdB.Version, canonicaljson.Encode(obj))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.receive(reused); !errors.Is(err, rooms.ErrPDUDropped) {
		t.Fatalf("receive = %v, want ErrPDUDropped", err)
	}
	if slices.Contains(h.timeline(roomB), msgA.EventID()) {
		t.Fatal("the reused id shows in room B")
	}
}

func TestInboundEventNamingASoftFailedOneMergesTheBranches(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	carol := id.NewUserID(fmt.Sprintf("carol_%d", testNumber(t)), inRemote)
	hd := h.head(room)
	cj := h.remoteEvent(hd, carol, auth.TypeMember, strp(string(carol)), `{"membership":"join"}`, hd.Extremities, hd.State)
	h.mustReceive(cj)
	fork := h.head(room)
	if err := h.svc.Ban(h.ctx, alice, room, bob, ""); err != nil {
		t.Fatal(err)
	}
	ban := h.head(room).Extremities[0]
	late := h.remoteEvent(fork, bob, "m.room.message", nil, `{"body":"late"}`, []*event.Event{cj}, fork.State)
	h.mustReceive(late)
	if k := h.known(room, late.EventID()); k == nil || !k.SoftFailed {
		t.Fatalf("the late message is stored as %+v, want soft-failed", k)
	}
	// carol's server saw both and names both (spec "Soft failure": the
	// soft-failed event takes part as usual once referenced).
	merged := h.head(room).State
	d := h.remoteEvent(h.head(room), carol, "m.room.message", nil, `{"body":"D"}`, []*event.Event{ban, late}, merged)
	h.mustReceive(d)
	after := h.head(room)
	if x := extremityIDsOf(after); len(x) != 1 || x[0] != d.EventID() {
		t.Fatalf("extremities %v, want D alone", x)
	}
	if after.State.Membership(string(bob)) != "ban" {
		t.Fatal("bob is not banned after the merge")
	}
	if !slices.Contains(h.timeline(room), d.EventID()) || slices.Contains(h.timeline(room), late.EventID()) {
		t.Fatal("D must be shown and the soft-failed message not")
	}
}

func TestInboundRedactionBeforeItsTarget(t *testing.T) {
	h := newFedHarness(t)
	room, _, bob, join := h.publicRoom("11")
	hd := h.head(room)
	msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"oops","msgtype":"m.text"}`, []*event.Event{join}, hd.State)
	// The redaction names the message but arrives first (its prev event
	// is the join: bob's server sent them out of order).
	red := h.remoteEvent(hd, bob, auth.TypeRedaction, nil, fmt.Sprintf(`{"redacts":%q}`, msg.EventID()), []*event.Event{join}, hd.State)
	h.mustReceive(red)
	h.mustReceive(msg)
	se, err := h.st.Event(h.ctx, room, msg.EventID())
	if err != nil {
		t.Fatal(err)
	}
	if string(se.Event.Content()) != "{}" || se.Redaction == nil || se.Redaction.EventID() != red.EventID() {
		t.Fatalf("the message is stored with content %s, redaction %v; want it redacted by %s", se.Event.Content(), se.Redaction, red.EventID())
	}
}
