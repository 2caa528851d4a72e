package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
)

// TestJoinerGetsNoPreJoinEvents: a server that joins a room with history
// is sent the room's events from its user's join on, never the events
// before it (server-server API "Joining Rooms": the joining server gets the
// state at the join through send_join; anything older it may backfill, and
// backfilled events are never placed after the join). An earlier event
// sent to it in a transaction would be appended to its timeline after the
// join: /messages would show a message sent before the user joined as if
// it came after.
//
// The resident's outbound queue decides which events a server gets by the
// windows its fan-out pass opens while reading the stream
// (storage/fedqueue.go). "fan-out behind the join" holds the resident's
// fan-out row locked while the room is created, used and joined, so the
// pass reads the creator's join only after the remote join committed: the
// remote server was not in the room at the creator's join, so its window
// must still open at its own join.
func TestJoinerGetsNoPreJoinEvents(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	for _, tc := range []struct {
		name     string
		version  string
		stallHS1 bool
	}{
		{"fan-out in step, v10", "10", false},
		{"fan-out behind the join, v10", "10", true},
		{"fan-out behind the join, v12", "12", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var release func()
			if tc.stallHS1 {
				release = stallFanOut(t, alice.srv)
			}
			room := alice.createRoom(t, map[string]any{"room_version": tc.version, "preset": "public_chat"})
			before := []string{alice.send(t, room, "before bob 1"), alice.send(t, room, "before bob 2")}

			bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
			join := joinEventID(t, bob, room, bob.id)
			if release != nil {
				release()
			}
			fromAlice := alice.send(t, room, "hello bob")
			sees(t, bob, room, fromAlice)
			fromBob := bob.send(t, room, "hello alice")
			sees(t, alice, room, fromBob)
			sameHistory(t, room, join, alice, bob)

			// Nothing from before the join after it on the joiner.
			theirs := bob.timeline(t, room)
			at := slices.Index(theirs, join)
			if at < 0 {
				t.Fatalf("hs2's /messages lacks bob's join: %s", bob.describe(t, room, theirs))
			}
			full := alice.timeline(t, room)
			preJoin := full[:slices.Index(full, join)]
			for _, e := range theirs[at+1:] {
				if slices.Contains(preJoin, e) {
					t.Errorf("hs2 shows the pre-join event %s after bob's join: %s", bob.describe(t, room, []string{e}),
						bob.describe(t, room, theirs))
				}
			}
			for _, e := range before {
				if slices.Index(theirs, e) > at {
					t.Errorf("message %s sent before bob's join is after it on hs2", e)
				}
			}

			// The resident's queue: hs2's window of the room opens at
			// bob's join, not earlier.
			since, joinPos := windowOf(t, alice.srv, room, string(bob.srv.Name), join)
			if len(since) == 0 {
				t.Fatalf("hs1 has no window of the room for hs2")
			}
			for _, s := range since {
				if s < joinPos {
					t.Errorf("hs1's window of the room for hs2 opens at stream position %d, before bob's join at %d", s, joinPos)
				}
			}
		})
	}
}

// TestJoinerSendsFromItsJoin: the joining server's queue sends the
// resident its events from its user's join on, also when its fan-out pass
// reaches the join only after a resident member's membership changed
// again (a display name): the resident members arrived with the room's
// state as outliers, and as of the join they were joined.
func TestJoinerSendsFromItsJoin(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	alice.send(t, room, "before bob")

	release := stallFanOut(t, bob.srv)
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	join := joinEventID(t, bob, room, bob.id)
	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(alice.id),
		map[string]any{"membership": "join", "displayname": "Alice"})
	eventually(t, "hs2 sees alice's new display name", func() (bool, string) {
		res := bob.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(alice.id), nil)
		return res.String("displayname") == "Alice", string(res.Raw)
	})
	release()

	fromBob := bob.send(t, room, "hello alice")
	sees(t, alice, room, fromBob)
	since, joinPos := windowOf(t, bob.srv, room, string(alice.srv.Name), join)
	if !slices.Equal(since, []int64{joinPos}) {
		t.Errorf("hs2's windows of the room for hs1 open at %v; want one at bob's join, %d", since, joinPos)
	}
}

// TestJoinerSendsUntilTheResidentLeft: the joining server's fan-out
// reaches its user's join only after the resident's last member left; the
// resident was in the room at the join, so it is sent what the joiner's
// users sent between the join and that leave.
func TestJoinerSendsUntilTheResidentLeft(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})

	release := stallFanOut(t, bob.srv)
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	fromBob := bob.send(t, room, "hello before you go")
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{})
	eventually(t, "hs2 sees alice leave", func() (bool, string) {
		m := membershipOf(t, bob, room, alice.id)
		return m == "leave", m
	})
	release()

	ctx, hs1 := context.Background(), mustConnect(t, alice.srv)
	// hs1 drops it (it is not in the room any more), but it was sent:
	// its transaction's answer (spec PUT /send: a result per PDU) names it.
	eventually(t, "hs2 sends hs1 bob's message", func() (bool, string) {
		var n int
		err := hs1.QueryRow(ctx, `SELECT count(*) FROM federation_inbound_txns
WHERE convert_from(response, 'UTF8')::jsonb -> 'pdus' ? $1`, fromBob).Scan(&n)
		return err == nil && n > 0, fmt.Sprint(n, err)
	})
}

// stallFanOut holds srv's federation fan-out row locked until the returned
// function (or the test's end) releases it: the queue's fan-out pass waits
// for the lock, so it reads the events committed meanwhile only afterwards.
func stallFanOut(t *testing.T, srv *apptest.Server) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pos int64
	if err := tx.QueryRow(ctx, `SELECT pos FROM federation_fanout FOR UPDATE`).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if err := tx.Commit(ctx); err != nil {
			t.Errorf("release the fan-out row: %v", err)
		}
		_ = conn.Close(ctx)
	}
	t.Cleanup(release)
	return release
}

// windowOf reads srv's database: the start positions of dest's windows of
// room in the outbound queue, and the stream position of event eventID.
func windowOf(t *testing.T, srv *apptest.Server, room, dest, eventID string) (since []int64, eventPos int64) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `
SELECT e.stream_pos FROM events e JOIN rooms r ON r.room_nid = e.room_nid
WHERE r.room_id = $1 AND e.event_id = $2`, room, eventID).Scan(&eventPos); err != nil {
		t.Fatalf("stream position of %s on %s: %v", eventID, srv.Name, err)
	}
	rows, err := conn.Query(ctx, `
SELECT w.since_pos FROM federation_destination_rooms w JOIN rooms r ON r.room_nid = w.room_nid
WHERE r.room_id = $1 AND w.destination = $2 ORDER BY w.since_pos`, room, dest)
	if err != nil {
		t.Fatal(err)
	}
	since, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(fmt.Errorf("windows of %s on %s: %w", dest, srv.Name, err))
	}
	return since, eventPos
}

// mustConnect opens a connection to srv's database, closed when the test
// ends.
func mustConnect(t *testing.T, srv *apptest.Server) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}

// TestALateForkEventTakesItsPlaceByDepth: a fork whose one branch reaches
// the other server late — hs1's fan-out stalls while alice sends a1 and
// bob's server sends b1..b3 on the same head — shows on both servers in
// the order of depth (a1 and b1 side by side, then b2, b3, then a2 which
// closes the fork), not in the order hs2 received them (a1 after b3).
func TestALateForkEventTakesItsPlaceByDepth(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "public_chat"})
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	base := bob.send(t, room, "base")
	sees(t, alice, room, base)

	release := stallFanOut(t, alice.srv)
	a1 := alice.send(t, room, "a1")
	var b []string
	for i := range 3 {
		b = append(b, bob.send(t, room, fmt.Sprintf("b%d", i+1)))
	}
	sees(t, alice, room, b[2])
	a2 := alice.send(t, room, "a2")
	release()
	sees(t, bob, room, a2)

	for _, u := range []user{alice, bob} {
		tl := u.timeline(t, room)
		at := func(e string) int { return slices.Index(tl, e) }
		if at(base) < 0 || at(a1) < 0 || at(a2) != len(tl)-1 {
			t.Fatalf("%s: the fork's events are not all shown, a2 last: %s", u.srv.Name, u.describe(t, room, tl))
		}
		fork := tl[at(base)+1 : at(base)+3]
		if !slices.Contains(fork, a1) || !slices.Contains(fork, b[0]) || !slices.Equal(tl[at(base)+3:at(base)+5], b[1:]) {
			t.Errorf("%s shows the fork out of depth order: %s", u.srv.Name, u.describe(t, room, tl[at(base):]))
		}
	}
}

// pageBack pages u's /messages of room backwards from from in pages of
// limit until the end, returning the event ids oldest first; an event
// twice fails the test.
func pageBack(t *testing.T, u user, room, from string, limit int) []string {
	t.Helper()
	var out []string
	for range 200 {
		q := url.Values{"dir": {"b"}, "limit": {fmt.Sprint(limit)}}
		if from != "" {
			q.Set("from", from)
		}
		res := u.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?"+q.Encode(), nil)
		chunk, _ := res.Body["chunk"].([]any)
		for _, c := range chunk {
			id := fmt.Sprint(c.(map[string]any)["event_id"])
			if slices.Contains(out, id) {
				t.Fatalf("%s twice while paging back", id)
			}
			out = append(out, id)
		}
		from = res.String("end")
		if from == "" {
			slices.Reverse(out)
			return out
		}
	}
	t.Fatal("paging back did not end")
	return nil
}

// TestJoinerPagesBackIntoPreJoinHistory: a user who joined a room over
// federation pages back past the join into the history before it, which
// their server backfills from the resident (in several /backfill rounds:
// 120 messages) — every message, in order, when the history is "shared";
// none when it is "joined". A sync's prev_batch continues into that
// history with no gap and nothing twice.
func TestJoinerPagesBackIntoPreJoinHistory(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice := register(t, srvs[0], "alice")
	for _, visibility := range []string{"shared", "joined"} {
		t.Run(visibility, func(t *testing.T) {
			bob := register(t, srvs[1], "bob_"+visibility)
			room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat",
				"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "",
					"content": map[string]any{"history_visibility": visibility}}}})
			var before []string
			for i := range 120 {
				before = append(before, alice.send(t, room, fmt.Sprintf("before %d", i)))
			}
			bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
			join := joinEventID(t, bob, room, bob.id)
			after := []string{alice.send(t, room, "after 0"), alice.send(t, room, "after 1")}
			sees(t, bob, room, after[1])

			want := append([]string{join}, after...)
			if visibility == "shared" {
				want = append(append([]string{}, before...), want...)
			}
			// Only the messages and the join: the room's first state events
			// (before any history visibility) may show too.
			pick := func(ids []string) []string {
				var out []string
				for _, e := range ids {
					if slices.Contains(want, e) || slices.Contains(before, e) {
						out = append(out, e)
					}
				}
				return out
			}
			if got := pick(pageBack(t, bob, room, "", 7)); !slices.Equal(got, want) {
				t.Fatalf("bob pages back through %d of the events, want %d: %s", len(got), len(want),
					bob.describe(t, room, got[:min(len(got), 5)]))
			}

			// A sync's timeline and its prev_batch: the same again.
			filter := `{"room":{"timeline":{"limit":2}}}`
			res := bob.must(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0&filter="+url.QueryEscape(filter), nil)
			var sync struct {
				Rooms struct {
					Join map[string]struct {
						Timeline struct {
							Events []struct {
								EventID string `json:"event_id"`
							} `json:"events"`
							PrevBatch string `json:"prev_batch"`
						} `json:"timeline"`
					} `json:"join"`
				} `json:"rooms"`
			}
			if err := json.Unmarshal(res.Raw, &sync); err != nil {
				t.Fatal(err)
			}
			tl := sync.Rooms.Join[room].Timeline
			if len(tl.Events) != 2 || tl.PrevBatch == "" {
				t.Fatalf("sync timeline of %d events, prev_batch %q", len(tl.Events), tl.PrevBatch)
			}
			all := pageBack(t, bob, room, tl.PrevBatch, 9)
			for _, e := range tl.Events {
				if slices.Contains(all, e.EventID) {
					t.Fatalf("/messages from prev_batch repeats the sync timeline's %s", e.EventID)
				}
				all = append(all, e.EventID)
			}
			if got := pick(all); !slices.Equal(got, want) {
				t.Fatalf("sync timeline and /messages from its prev_batch give %d of the events, want %d", len(got), len(want))
			}

			// A token altered by hand, or one of another kind, is refused.
			for _, tok := range []string{tl.PrevBatch + "0", "o1_" + tl.PrevBatch, "t-5", "not a token"} {
				res := bob.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?dir=b&from="+url.QueryEscape(tok), nil)
				if res.Status != http.StatusBadRequest || res.Errcode() != "M_INVALID_PARAM" {
					t.Errorf("/messages from %q: %d %s, want 400 M_INVALID_PARAM", tok, res.Status, res.Raw)
				}
			}
		})
	}
}
