package storage_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// filler fills a room with real signed events fast, for measuring what a
// long history costs (issue #9: "the same time with 1,000 and 1,000,000
// events"). Events are built by the real builder (event.Build: canonical
// JSON, content hash, this server's signature, the reference-hash event
// id), checked by the auth rules against their auth events, and stored
// through the real persist path (Rooms.Append: current state, state
// snapshots, memberships, stream positions), many per transaction. One
// goroutine builds the next batch while the previous one is stored, so
// the fill uses both the CPU and the database.
//
// Every joinEvery-th event is the join of a new member (the room must be
// public): a long history then has a growing membership, state snapshot
// chains and several senders, not one sender's messages alone.
type filler struct {
	st     *storage.Rooms
	key    signing.Key
	server id.ServerName
	room   id.RoomID
	// head is what the builder knows of the room: its state (for the auth
	// events), its last event and members, kept up to date as it builds.
	head      rooms.Head
	members   []id.UserID
	joinEvery int
	built     int
}

// newFillService is newRoomService with the server's signing key, which
// the filler signs with.
func newFillService(tb testing.TB) (*rooms.Service, *storage.Rooms, signing.Key, *pgxpool.Pool) {
	tb.Helper()
	key, err := signing.Generate("ed25519:fill")
	if err != nil {
		tb.Fatal(err)
	}
	pool := pgtest.NewPool(tb)
	st := storage.NewRooms(pool)
	return rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default()), st, key, pool
}

func newFiller(ctx context.Context, tb testing.TB, st *storage.Rooms, key signing.Key, room id.RoomID, creator id.UserID) *filler {
	tb.Helper()
	h, err := st.Head(ctx, room)
	if err != nil {
		tb.Fatal(err)
	}
	return &filler{st: st, key: key, server: creator.Server(), room: room, head: *h,
		members: []id.UserID{creator}, joinEvery: 1000}
}

// next builds the room's next event on f.head and advances it.
func (f *filler) next() (*event.Event, error) {
	f.built++
	var p event.Proto
	if f.built%f.joinEvery == 0 {
		u := id.NewUserID(fmt.Sprintf("filler%d", len(f.members)), f.server)
		sk := string(u)
		p = event.Proto{Sender: u, Type: auth.TypeMember, StateKey: &sk, Content: json.RawMessage(`{"membership":"join"}`)}
		f.members = append(f.members, u)
	} else {
		sender := f.members[f.built%len(f.members)]
		p = event.Proto{Sender: sender, Type: "m.room.message",
			Content: json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":"history message %d"}`, f.built))}
	}
	v := f.head.Version
	var authEvents []auth.Event
	for _, k := range auth.SelectAuthEvents(v, p.Type, p.StateKey, p.Sender, p.Content) {
		if ev := f.head.State[k]; ev != nil {
			p.AuthEvents = append(p.AuthEvents, ev.Ref())
			authEvents = append(authEvents, ev)
		}
	}
	if v.CreateEventDefinesRoomID {
		if c := f.head.State.Get(auth.TypeCreate, ""); c != nil {
			authEvents = append(authEvents, c)
		}
	}
	var depth int64
	for _, x := range f.head.Extremities {
		p.PrevEvents = append(p.PrevEvents, x.Ref())
		depth = max(depth, x.Depth())
	}
	p.RoomID, p.Depth, p.OriginServerTS = f.room, depth+1, time.Now().UnixMilli()
	ev, err := event.Build(v, p, f.server, f.key)
	if err != nil {
		return nil, err
	}
	if err := auth.CheckAuthEvents(v, ev, authEvents); err != nil {
		return nil, fmt.Errorf("event %d: %w", f.built, err)
	}
	if ev.IsState() {
		f.head.State = f.head.State.With(ev)
	}
	f.head.Extremities = []*event.Event{ev}
	return ev, nil
}

// fill appends n events in transactions of batch events.
func (f *filler) fill(ctx context.Context, n, batch int) error {
	type built struct {
		evs []*event.Event
		err error
	}
	ready := make(chan built, 1)
	go func() {
		defer close(ready)
		for left := n; left > 0; {
			evs := make([]*event.Event, 0, min(batch, left))
			for range cap(evs) {
				ev, err := f.next()
				if err != nil {
					ready <- built{err: err}
					return
				}
				evs = append(evs, ev)
			}
			left -= len(evs)
			select {
			case ready <- built{evs: evs}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for b := range ready {
		if b.err != nil {
			return b.err
		}
		builds := make([]rooms.BuildFunc, len(b.evs))
		for i, ev := range b.evs {
			builds[i] = func(*rooms.Head) (*event.Event, error) { return ev, nil }
		}
		if _, err := f.st.Append(ctx, rooms.AppendRequest{RoomID: f.room, Build: builds}); err != nil {
			return fmt.Errorf("append %d events: %w", len(b.evs), err)
		}
	}
	return ctx.Err()
}

func TestFillerWritesValidEvents(t *testing.T) {
	svc, st, key, _ := newFillService(t)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	f := newFiller(ctx, t, st, key, room, alice)
	f.joinEvery = 50
	if err := f.fill(ctx, 230, 100); err != nil {
		t.Fatal(err)
	}
	after, err := st.Head(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Seq - before.Seq; got != 230 {
		t.Fatalf("the fill added %d events, want 230", got)
	}
	// The room goes on through the ordinary send path on top of the fill.
	bob := id.NewUserID("filler4", roomServer)
	if _, err := svc.Send(ctx, rooms.Viewer{User: bob, Device: "D"}, room, "m.room.message", "t1", json.RawMessage(`{"body":"after"}`)); err != nil {
		t.Fatalf("a member who joined in the fill sends: %v", err)
	}
	members, err := st.Members(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 5 || members[bob] != "join" {
		t.Errorf("members after the fill = %v, want the creator and 4 joined", members)
	}
	page, err := svc.Messages(ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		if server == roomServer && keyID == key.ID() {
			return key.Public(), nil
		}
		return nil, fmt.Errorf("no key %s %s", server, keyID)
	}
	var filled int
	for _, se := range page.Chunk {
		if err := event.Verify(ctx, se.Event, lookup); err != nil {
			t.Errorf("event %d (%s) does not verify: %v", se.Seq, se.Event.Type(), err)
		}
		if se.Seq > before.Seq && se.Seq <= after.Seq {
			filled++
		}
	}
	if filled != 230 {
		t.Errorf("/messages returned %d of the 230 filled events", filled)
	}
}
