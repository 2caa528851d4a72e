package storage_test

// The harness of the tests of the inbound PDU pipeline (rooms.Inbound) on
// the real store: events signed by a fake remote server's key, received
// into rooms this server holds.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
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
	h := &fedHarness{t: t, ctx: context.Background(), svc: svc, st: st, notifier: n, local: local,
		remote: remote, ts: time.Now().UnixMilli()}
	h.in = rooms.NewInbound(svc, st, rooms.InboundDeps{Keys: h.keyOf, Fetcher: remote})
	return h
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
	bob := id.NewUserID(fmt.Sprintf("bob_%d", testNumber(h.t)), inRemote)
	room, err := h.svc.CreateRoom(h.ctx, alice, rooms.CreateRequest{Preset: "public_chat", RoomVersion: version})
	if err != nil {
		h.t.Fatal(err)
	}
	hd := h.head(room)
	join := h.remoteEvent(hd, bob, auth.TypeMember, strp(string(bob)), `{"membership":"join"}`, hd.Extremities, hd.State)
	h.mustReceive(join)
	return room, alice, bob, join
}

// keyOf is a rooms/event key lookup that knows the harness's two servers'
// keys: what backfilled and fetched events are verified with.
func (h *fedHarness) keyOf(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
	switch {
	case server == roomServer && keyID == h.local.ID():
		return h.local.Public(), nil
	case server == inRemote && keyID == h.remote.key.ID():
		return h.remote.key.Public(), nil
	}
	return nil, fmt.Errorf("no key %s of %s", keyID, server)
}
