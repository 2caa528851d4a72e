package storage_test

// Tests of the inbound PDU pipeline (rooms.Inbound) on the real store:
// events signed by a fake remote server's key, received into rooms this
// server holds.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/rooms/stateres"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

const inRemote = id.ServerName("remote.test")

// recordingNotifier remembers what the notifier was told.
type recordingNotifier struct {
	mu  sync.Mutex
	evs []id.EventID
}

func (n *recordingNotifier) OnNewEvent(_ context.Context, ev rooms.NewEvent) {
	n.mu.Lock()
	n.evs = append(n.evs, ev.EventID)
	n.mu.Unlock()
}

func (n *recordingNotifier) told(eid id.EventID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Contains(n.evs, eid)
}

// fakeRemote is the remote server: it signs events and answers the
// fetches of the inbound pipeline from what it built.
type fakeRemote struct {
	key signing.Key
	mu  sync.Mutex
	// events are every event the remote built or knows, by id.
	events map[id.EventID]*event.Event
	// stateBefore is the state before each event, as the remote sees it.
	stateBefore map[id.EventID]rooms.State
	// missing is what get_missing_events answers; missingErr fails it.
	missing    []*event.Event
	missingErr error
	calls      []string
}

func (f *fakeRemote) call(name string) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

func (f *fakeRemote) called(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == name {
			n++
		}
	}
	return n
}

// GetMissingEvents answers f.missing when set; else it walks back from
// latest through what the remote built, breadth first, stopping at
// earliest, up to limit events (the spec's get_missing_events).
func (f *fakeRemote) GetMissingEvents(_ context.Context, _ id.ServerName, _ id.RoomID, earliest, latest []id.EventID, limit int, _ int64) ([]json.RawMessage, error) {
	f.call("get_missing_events")
	if f.missingErr != nil {
		return nil, f.missingErr
	}
	var out []json.RawMessage
	if f.missing != nil {
		for _, ev := range f.missing {
			out = append(out, ev.Raw())
		}
		return out, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[id.EventID]bool{}
	for _, e := range append(slices.Clone(earliest), latest...) {
		seen[e] = true
	}
	var queue []id.EventID
	for _, l := range latest {
		if ev := f.events[l]; ev != nil {
			queue = append(queue, ev.PrevEventIDs()...)
		}
	}
	for len(queue) > 0 && len(out) < limit {
		eid := queue[0]
		queue = queue[1:]
		ev := f.events[eid]
		if seen[eid] || ev == nil {
			continue
		}
		seen[eid] = true
		out = append(out, ev.Raw())
		queue = append(queue, ev.PrevEventIDs()...)
	}
	return out, nil
}

func (f *fakeRemote) GetEvent(_ context.Context, _ id.ServerName, eid id.EventID) (json.RawMessage, error) {
	f.call("event")
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev := f.events[eid]; ev != nil {
		return ev.Raw(), nil
	}
	return nil, errors.New("404 M_NOT_FOUND")
}

func (f *fakeRemote) authChain(evs []*event.Event) []*event.Event {
	seen := map[id.EventID]bool{}
	var out []*event.Event
	var walk func(ids []id.EventID)
	walk = func(ids []id.EventID) {
		for _, a := range ids {
			if seen[a] || f.events[a] == nil {
				continue
			}
			seen[a] = true
			out = append(out, f.events[a])
			walk(f.events[a].AuthEventIDs())
		}
	}
	for _, ev := range evs {
		walk(ev.AuthEventIDs())
	}
	return out
}

func (f *fakeRemote) GetStateIDs(_ context.Context, _ id.ServerName, _ id.RoomID, eid id.EventID) ([]id.EventID, []id.EventID, error) {
	f.call("state_ids")
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.stateBefore[eid]
	if !ok {
		return nil, nil, errors.New("404 M_NOT_FOUND")
	}
	var ids, chain []id.EventID
	var evs []*event.Event
	for _, ev := range st {
		ids = append(ids, ev.EventID())
		evs = append(evs, ev)
	}
	for _, ev := range f.authChain(evs) {
		chain = append(chain, ev.EventID())
	}
	return ids, chain, nil
}

func (f *fakeRemote) GetState(_ context.Context, _ id.ServerName, _ id.RoomID, eid id.EventID) ([]json.RawMessage, []json.RawMessage, error) {
	f.call("state")
	return nil, nil, errors.New("not used")
}

func (f *fakeRemote) EventAuth(_ context.Context, _ id.ServerName, _ id.RoomID, eid id.EventID) ([]json.RawMessage, error) {
	f.call("event_auth")
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events[eid]
	if ev == nil {
		return nil, errors.New("404 M_NOT_FOUND")
	}
	var out []json.RawMessage
	for _, a := range f.authChain([]*event.Event{ev}) {
		out = append(out, a.Raw())
	}
	return out, nil
}

// fedHarness is this server (rooms.test) with its inbound pipeline, and
// the remote server (remote.test).
type fedHarness struct {
	t        testing.TB
	ctx      context.Context
	svc      *rooms.Service
	st       *storage.Rooms
	in       *rooms.Inbound
	notifier *recordingNotifier
	local    signing.Key
	remote   *fakeRemote
	ts       int64
}

func newFedHarness(t testing.TB) *fedHarness {
	t.Helper()
	local, err := signing.Generate("ed25519:local")
	if err != nil {
		t.Fatal(err)
	}
	rk, err := signing.Generate("ed25519:remote")
	if err != nil {
		t.Fatal(err)
	}
	remote := &fakeRemote{key: rk, events: map[id.EventID]*event.Event{}, stateBefore: map[id.EventID]rooms.State{}}
	st := storage.NewRooms(pgtest.NewPool(t))
	n := &recordingNotifier{}
	svc := rooms.New(rooms.Config{ServerName: roomServer, Key: local}, st, n, nil, slog.Default())
	keys := func(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		switch {
		case server == roomServer && keyID == local.ID():
			return local.Public(), nil
		case server == inRemote && keyID == rk.ID():
			return rk.Public(), nil
		}
		return nil, fmt.Errorf("no key %s of %s", keyID, server)
	}
	in := rooms.NewInbound(svc, st, rooms.InboundDeps{Keys: keys, Fetcher: remote})
	return &fedHarness{t: t, ctx: context.Background(), svc: svc, st: st, in: in, notifier: n, local: local,
		remote: remote, ts: time.Now().UnixMilli()}
}

// build builds an event signed by server's key on prev, citing its auth
// events from state (the state before it); the remote remembers it.
func (h *fedHarness) build(server id.ServerName, v roomversion.Version, room id.RoomID, sender id.UserID, typ string, stateKey *string, content string, prev []*event.Event, state rooms.State) *event.Event {
	h.t.Helper()
	key := h.remote.key
	if server == roomServer {
		key = h.local
	}
	var authRefs []event.Ref
	for _, k := range auth.SelectAuthEvents(v, typ, stateKey, sender, json.RawMessage(content)) {
		if ev := state[k]; ev != nil {
			authRefs = append(authRefs, ev.Ref())
		}
	}
	var depth int64
	var prevRefs []event.Ref
	for _, p := range prev {
		prevRefs = append(prevRefs, p.Ref())
		depth = max(depth, p.Depth())
	}
	h.ts++
	ev, err := event.Build(v, event.Proto{Sender: sender, Type: typ, StateKey: stateKey, Content: json.RawMessage(content),
		RoomID: room, PrevEvents: prevRefs, AuthEvents: authRefs, Depth: depth + 1, OriginServerTS: h.ts}, server, key)
	if err != nil {
		h.t.Fatal(err)
	}
	h.remote.mu.Lock()
	h.remote.events[ev.EventID()] = ev
	h.remote.stateBefore[ev.EventID()] = state
	h.remote.mu.Unlock()
	return ev
}

// remoteEvent is build by the remote server.
func (h *fedHarness) remoteEvent(head *rooms.Head, sender id.UserID, typ string, stateKey *string, content string, prev []*event.Event, state rooms.State) *event.Event {
	h.t.Helper()
	return h.build(inRemote, head.Version, head.RoomID, sender, typ, stateKey, content, prev, state)
}

func (h *fedHarness) head(room id.RoomID) *rooms.Head {
	h.t.Helper()
	hd, err := h.st.Head(h.ctx, room)
	if err != nil {
		h.t.Fatal(err)
	}
	return hd
}

func (h *fedHarness) receive(ev *event.Event) error {
	_, err := h.in.ReceivePDU(h.ctx, inRemote, ev.Raw())
	return err
}

func (h *fedHarness) mustReceive(ev *event.Event) {
	h.t.Helper()
	if err := h.receive(ev); err != nil {
		h.t.Fatalf("receive %s (%s): %v", ev.EventID(), ev.Type(), err)
	}
}

func (h *fedHarness) known(room id.RoomID, eid id.EventID) *rooms.KnownEvent {
	h.t.Helper()
	k, err := h.st.KnownEvents(h.ctx, room, []id.EventID{eid})
	if err != nil {
		h.t.Fatal(err)
	}
	return k[eid]
}

// timeline is the ids of the events clients see in room, oldest first.
func (h *fedHarness) timeline(room id.RoomID) []id.EventID {
	h.t.Helper()
	evs, err := h.st.Timeline(h.ctx, room, 0, rooms.Forward, 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []id.EventID
	for _, se := range evs {
		out = append(out, se.Event.EventID())
	}
	return out
}

func strp(s string) *string { return &s }

// publicRoom creates a public room of alice@rooms.test that bob@remote.test
// has joined over federation; it returns the room and bob's join.
func (h *fedHarness) publicRoom(version string) (id.RoomID, id.UserID, id.UserID, *event.Event) {
	h.t.Helper()
	alice := uniqueUser(h.t, "alice")
	bob := id.NewUserID(fmt.Sprintf("bob_%p", h.t), inRemote)
	room, err := h.svc.CreateRoom(h.ctx, alice, rooms.CreateRequest{Preset: "public_chat", RoomVersion: version})
	if err != nil {
		h.t.Fatal(err)
	}
	hd := h.head(room)
	join := h.remoteEvent(hd, bob, auth.TypeMember, strp(string(bob)), `{"membership":"join"}`, hd.Extremities, hd.State)
	h.mustReceive(join)
	return room, alice, bob, join
}

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
	bob := id.NewUserID(fmt.Sprintf("bob_%p", h.t), inRemote)
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
	carol := id.NewUserID(fmt.Sprintf("carol_%p", t), inRemote)
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
