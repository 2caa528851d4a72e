package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// Serving the room graph to other servers (rooms/serve_*.go) on a real
// store. Remote users join local rooms through the ordinary Join (the
// service builds and signs their events itself: the reads under test do
// not care who signed).

const (
	remoteServer = id.ServerName("remote.test")
	otherServer  = id.ServerName("other.test")
)

type serveFixture struct {
	svc   *rooms.Service
	st    *storage.Rooms
	pool  *pgxpool.Pool
	alice id.UserID
	bob   id.UserID // on remoteServer
	room  id.RoomID
}

// newServeFixture creates a public room of alice's that bob@remote.test
// has joined.
func newServeFixture(t testing.TB, req rooms.CreateRequest) *serveFixture {
	t.Helper()
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t)
	st := storage.NewRooms(pool)
	svc := rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default())
	f := &serveFixture{svc: svc, st: st, pool: pool,
		alice: uniqueUser(t, "alice"), bob: id.NewUserID(fmt.Sprintf("bob_%d", testNumber(t)), remoteServer)}
	if req.Preset == "" {
		req.Preset = "public_chat"
	}
	if f.room, err = svc.CreateRoom(context.Background(), f.alice, req); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *serveFixture) join(t testing.TB, user id.UserID) {
	t.Helper()
	if _, err := f.svc.Join(context.Background(), user, f.room, ""); err != nil {
		t.Fatalf("join %s: %v", user, err)
	}
}

func (f *serveFixture) say(t testing.TB, body string) id.EventID {
	t.Helper()
	content, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	ev, err := f.svc.Send(context.Background(), rooms.Viewer{User: f.alice, Device: "D"}, f.room, "m.room.message", body, content)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (f *serveFixture) setState(t *testing.T, typ, content string) id.EventID {
	t.Helper()
	ev, err := f.svc.SetState(context.Background(), f.alice, f.room, typ, "", json.RawMessage(content))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func bodyOf(ev *event.Event) string {
	var c struct {
		Body string `json:"body"`
	}
	_ = json.Unmarshal(ev.Content(), &c)
	return c.Body
}

func stateContent(st []*event.Event, typ string) string {
	for _, ev := range st {
		if ev.Type() == typ {
			return string(ev.Content())
		}
	}
	return ""
}

func TestServeStateAtAndAuthChain(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	f.join(t, f.bob)
	f.setState(t, "m.room.name", `{"name":"first"}`)
	m1 := f.say(t, "one")
	f.setState(t, "m.room.name", `{"name":"second"}`)
	m2 := f.say(t, "two")

	at1, err := f.svc.StateAt(ctx, f.room, m1)
	if err != nil {
		t.Fatal(err)
	}
	at2, err := f.svc.StateAt(ctx, f.room, m2)
	if err != nil {
		t.Fatal(err)
	}
	if got := stateContent(at1, "m.room.name"); got != `{"name":"first"}` {
		t.Errorf("name at m1 = %s", got)
	}
	if got := stateContent(at2, "m.room.name"); got != `{"name":"second"}` {
		t.Errorf("name at m2 = %s", got)
	}
	for _, ev := range at2 {
		if !ev.IsState() || ev.EventID() == m2 {
			t.Errorf("state at m2 holds %s (%s)", ev.EventID(), ev.Type())
		}
	}
	if stateContent(at2, "m.room.create") == "" {
		t.Error("state at m2 lacks the create event")
	}

	chain, err := f.svc.AuthChain(ctx, f.room, at2)
	if err != nil {
		t.Fatal(err)
	}
	inChain := map[id.EventID]bool{}
	for _, ev := range chain {
		inChain[ev.EventID()] = true
		if ev.Type() == "m.room.name" || ev.Type() == "m.room.message" {
			t.Errorf("auth chain holds a %s", ev.Type())
		}
	}
	// Closed under auth_events: every auth event of the state and of the
	// chain is in the chain.
	for _, ev := range append(append([]*event.Event{}, at2...), chain...) {
		for _, a := range ev.AuthEventIDs() {
			if !inChain[a] {
				t.Errorf("auth event %s of %s (%s) missing from the chain", a, ev.EventID(), ev.Type())
			}
		}
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].Depth() < chain[i-1].Depth() {
			t.Fatalf("auth chain not ordered by depth at %d", i)
		}
	}

	// Served: the same, by id, to a server in the room; refused to others.
	stIDs, chainIDs, err := f.svc.ServeStateIDs(ctx, remoteServer, f.room, m2)
	if err != nil {
		t.Fatal(err)
	}
	if len(stIDs) != len(at2) || len(chainIDs) != len(chain) {
		t.Errorf("state_ids: %d state, %d chain; want %d, %d", len(stIDs), len(chainIDs), len(at2), len(chain))
	}
	if _, _, err := f.svc.ServeState(ctx, otherServer, f.room, m2); !errors.Is(err, mxerr.Forbidden) {
		t.Errorf("state for a server not in the room: %v, want M_FORBIDDEN", err)
	}
	if _, _, err := f.svc.ServeState(ctx, remoteServer, f.room, "$nope"); !errors.Is(err, rooms.ErrEventNotFound) {
		t.Errorf("state at an unknown event: %v, want not found", err)
	}
	if _, _, err := f.svc.ServeState(ctx, remoteServer, "!unknown:rooms.test", m2); !errors.Is(err, mxerr.Forbidden) {
		t.Errorf("state of an unknown room: %v, want M_FORBIDDEN", err)
	}

	auth2, err := f.svc.ServeEventAuth(ctx, remoteServer, f.room, m2)
	if err != nil {
		t.Fatal(err)
	}
	ev2, err := f.svc.ServeEvent(ctx, remoteServer, m2)
	if err != nil {
		t.Fatal(err)
	}
	if bodyOf(ev2) != "two" || ev2.EventID() != m2 {
		t.Fatalf("served event %s %s", ev2.EventID(), ev2.Content())
	}
	want := map[id.EventID]bool{}
	for _, a := range ev2.AuthEventIDs() {
		want[a] = true
	}
	for _, ev := range auth2 {
		delete(want, ev.EventID())
	}
	if len(want) != 0 {
		t.Errorf("event_auth lacks %v", want)
	}
}

func TestServeEventLeavesOutRejectedAndSoftFailed(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	f.join(t, f.bob)
	ok := f.say(t, "fine")
	rejected := f.say(t, "rejected")
	soft := f.say(t, "soft")
	if _, err := f.pool.Exec(ctx, `UPDATE events SET rejected = 'test' WHERE event_id = $1`, rejected); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE events SET soft_failed = TRUE WHERE event_id = $1`, soft); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		event id.EventID
		found bool
	}{
		{"accepted", ok, true},
		{"rejected", rejected, false},
		{"soft-failed", soft, false},
		{"unknown", "$unknown", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.ServeEvent(ctx, remoteServer, tc.event)
			if tc.found && err != nil {
				t.Fatal(err)
			}
			if !tc.found && !errors.Is(err, rooms.ErrEventNotFound) {
				t.Fatalf("err %v, want not found", err)
			}
			if _, err := f.svc.StateAt(ctx, f.room, tc.event); tc.found != (err == nil) {
				t.Fatalf("StateAt: %v", err)
			}
			if !tc.found {
				return
			}
			if _, err := f.svc.ServeEvent(ctx, otherServer, tc.event); !errors.Is(err, mxerr.Forbidden) {
				t.Fatalf("to a server not in the room: %v, want M_FORBIDDEN", err)
			}
		})
	}
	// A walk never steps onto them either.
	last := f.say(t, "last")
	evs, err := f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{last}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.EventID() == rejected || ev.EventID() == soft {
			t.Errorf("backfill served %s", bodyOf(ev))
		}
	}
}

func TestServeBackfill(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	f.join(t, f.bob)
	var msgs []id.EventID
	for i := range 30 {
		msgs = append(msgs, f.say(t, fmt.Sprintf("m%d", i)))
	}
	bodies := func(evs []*event.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, bodyOf(ev))
		}
		return out
	}
	evs, err := f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{msgs[29]}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bodies(evs), []string{"m29", "m28", "m27", "m26", "m25"}; !slices.Equal(got, want) {
		t.Errorf("backfill = %v, want %v", got, want)
	}
	// Two starting points: both included, the walk goes on from the deeper.
	evs, err = f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{msgs[10], msgs[20]}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bodies(evs), []string{"m20", "m19", "m18"}; !slices.Equal(got, want) {
		t.Errorf("backfill from two = %v, want %v", got, want)
	}
	// Everything, down to the create event; a limit above the cap is capped.
	evs, err = f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{msgs[29]}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(evs); n == 0 || evs[n-1].Type() != "m.room.create" {
		t.Fatalf("full backfill of %d events does not end with the create event", n)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Depth() >= evs[i-1].Depth() {
			t.Fatalf("backfill not in descending depth at %d", i)
		}
	}
	if _, err := f.svc.ServeBackfill(ctx, otherServer, f.room, []id.EventID{msgs[29]}, 5); !errors.Is(err, mxerr.Forbidden) {
		t.Errorf("backfill for a server not in the room: %v", err)
	}
	evs, err = f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{"$unknown"}, 5)
	if err != nil || len(evs) != 0 {
		t.Errorf("backfill from an unknown event = %d events, %v", len(evs), err)
	}
}

func TestServeMissingEvents(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	f.join(t, f.bob)
	var msgs []id.EventID
	var depths []int64
	for i := range 10 {
		msgs = append(msgs, f.say(t, fmt.Sprintf("m%d", i)))
	}
	evs, err := f.svc.ServeBackfill(ctx, remoteServer, f.room, msgs, 10)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[id.EventID]int64{}
	for _, ev := range evs {
		byID[ev.EventID()] = ev.Depth()
	}
	for _, m := range msgs {
		depths = append(depths, byID[m])
	}
	for _, tc := range []struct {
		name string
		req  rooms.MissingEventsRequest
		want []string
	}{
		{"gap", rooms.MissingEventsRequest{Earliest: msgs[3:4], Latest: msgs[9:], Limit: 20}, []string{"m4", "m5", "m6", "m7", "m8"}},
		{"limit keeps the newest", rooms.MissingEventsRequest{Earliest: msgs[3:4], Latest: msgs[9:], Limit: 3}, []string{"m6", "m7", "m8"}},
		{"min depth", rooms.MissingEventsRequest{Earliest: msgs[0:1], Latest: msgs[9:], Limit: 20, MinDepth: depths[6]}, []string{"m6", "m7", "m8"}},
		{"default limit", rooms.MissingEventsRequest{Latest: msgs[9:]}, nil},
		{"nothing missing", rooms.MissingEventsRequest{Earliest: msgs[8:9], Latest: msgs[9:]}, []string{}},
		{"unknown latest", rooms.MissingEventsRequest{Earliest: msgs[8:9], Latest: []id.EventID{"$unknown"}}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := f.svc.ServeMissingEvents(ctx, remoteServer, f.room, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if len(evs) != 10 {
					t.Fatalf("%d events, want the default 10", len(evs))
				}
				return
			}
			got := []string{}
			for _, ev := range evs {
				got = append(got, bodyOf(ev))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := f.svc.ServeMissingEvents(ctx, otherServer, f.room, rooms.MissingEventsRequest{Latest: msgs[9:]}); !errors.Is(err, mxerr.Forbidden) {
		t.Errorf("missing events for a server not in the room: %v", err)
	}
}

// TestServeHistoryVisibility: a server sees an event when one of its users
// could; what it may not see comes redacted (content gone, id kept).
func TestServeHistoryVisibility(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	carol := id.NewUserID(fmt.Sprintf("carol_%d", testNumber(t)), otherServer)

	sharedMsg := f.say(t, "shared before bob joined")
	f.setState(t, "m.room.history_visibility", `{"history_visibility":"joined"}`)
	joinedOnly := f.say(t, "joined only")
	f.setState(t, "m.room.history_visibility", `{"history_visibility":"invited"}`)
	if err := f.svc.Invite(ctx, f.alice, f.room, carol, ""); err != nil {
		t.Fatal(err)
	}
	invitedMsg := f.say(t, "invited may see")
	f.join(t, f.bob)
	f.join(t, carol)
	f.setState(t, "m.room.history_visibility", `{"history_visibility":"joined"}`)
	afterJoin := f.say(t, "after both joined")

	for _, tc := range []struct {
		server  id.ServerName
		event   id.EventID
		visible bool
	}{
		{remoteServer, sharedMsg, true},
		{remoteServer, joinedOnly, false},
		{remoteServer, invitedMsg, false},
		{remoteServer, afterJoin, true},
		{otherServer, sharedMsg, true},
		{otherServer, joinedOnly, false},
		{otherServer, invitedMsg, true},
		{otherServer, afterJoin, true},
	} {
		ev, err := f.svc.ServeEvent(ctx, tc.server, tc.event)
		if err != nil {
			t.Fatal(err)
		}
		if ev.EventID() != tc.event {
			t.Fatalf("served %s for %s", ev.EventID(), tc.event)
		}
		if visible := bodyOf(ev) != ""; visible != tc.visible {
			t.Errorf("%s sees %q: %v, want %v", tc.server, tc.event, visible, tc.visible)
		}
	}
	// The same rules apply to a walk.
	evs, err := f.svc.ServeBackfill(ctx, remoteServer, f.room, []id.EventID{afterJoin}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.EventID() == joinedOnly && bodyOf(ev) != "" {
			t.Error("backfill served the joined-only message unredacted")
		}
		// A history_visibility change is visible when either side allows.
		if ev.Type() == "m.room.history_visibility" && string(ev.Content()) == "{}" {
			t.Errorf("history visibility change %s served redacted", ev.EventID())
		}
	}
}

func TestServeTimestampToEvent(t *testing.T) {
	ctx := context.Background()
	f := newServeFixture(t, rooms.CreateRequest{})
	f.join(t, f.bob)
	m := f.say(t, "now")
	ev, err := f.svc.ServeTimestampToEvent(ctx, remoteServer, f.room, 1<<50, rooms.Backward)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID() != m {
		t.Errorf("closest event before the far future = %s, want %s", ev.EventID(), m)
	}
	if _, err := f.svc.ServeTimestampToEvent(ctx, remoteServer, f.room, 1<<50, rooms.Forward); !errors.Is(err, rooms.ErrEventNotFound) {
		t.Errorf("after the far future: %v, want not found", err)
	}
	if _, err := f.svc.ServeTimestampToEvent(ctx, otherServer, f.room, 0, rooms.Forward); !errors.Is(err, mxerr.Forbidden) {
		t.Errorf("for a server not in the room: %v", err)
	}
}
