package federation_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// TestRejoinerPagesThroughTheHole: bob's server holds the room's history
// until bob left and from his rejoin on; what alice sent meanwhile never
// reached it (hs1 sends a room's events only to servers in it), so bob's
// rejoin names prev events hs2 lacks — a hole in the middle of its
// history. Paging /messages back from the end fills it from hs1 (GET
// /backfill, in more than one round: 60 messages) and returns every event
// once, in order. With "shared" history bob sees the messages sent while
// he was away (client-server API, "History visibility": shared history is
// visible to members who join later, "even those sent when the member
// was not a part of the room"); with "joined" he does not.
func TestRejoinerPagesThroughTheHole(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice := register(t, srvs[0], "alice")
	for _, visibility := range []string{"shared", "joined"} {
		t.Run(visibility, func(t *testing.T) {
			bob := register(t, srvs[1], "bob_"+visibility)
			room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat",
				"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "",
					"content": map[string]any{"history_visibility": visibility}}}})
			joinRoom := func() {
				bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
			}
			joinRoom()
			together := []string{alice.send(t, room, "together 0"), alice.send(t, room, "together 1")}
			sees(t, bob, room, together[1])
			bob.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{})
			eventually(t, "hs1 sees bob leave", func() (bool, string) {
				m := membershipOf(t, alice, room, bob.id)
				return m == "leave", m
			})

			var away []string
			for i := range 60 {
				away = append(away, alice.send(t, room, fmt.Sprintf("away %d", i)))
			}
			joinRoom()
			rejoin := joinEventID(t, bob, room, bob.id)
			back := []string{alice.send(t, room, "back 0"), alice.send(t, room, "back 1")}
			sees(t, bob, room, back[1])

			// hs2 had none of the hole before paging into it.
			full := alice.timeline(t, room)
			got := pageBack(t, bob, room, "", 7)
			for _, e := range got {
				if !slices.Contains(full, e) {
					t.Fatalf("hs2 shows an event hs1 does not: %s", bob.describe(t, room, []string{e}))
				}
			}
			// Every event hs2 shows in hs1's order.
			var inOrder []string
			for _, e := range full {
				if slices.Contains(got, e) {
					inOrder = append(inOrder, e)
				}
			}
			if !slices.Equal(got, inOrder) {
				t.Fatalf("hs2 pages back through the room in another order than hs1:\n%s\nvs %s",
					bob.describe(t, room, got), alice.describe(t, room, inOrder))
			}
			for _, e := range append(append(slices.Clone(together), rejoin), back...) {
				if !slices.Contains(got, e) {
					t.Fatalf("hs2 lacks %s, sent while bob was in the room", bob.describe(t, room, []string{e}))
				}
			}
			var seen int
			for _, e := range away {
				if slices.Contains(got, e) {
					seen++
				}
			}
			if visibility == "shared" {
				if seen != len(away) {
					t.Fatalf("hs2 shows %d of the %d messages sent while bob was away", seen, len(away))
				}
				// Nothing else missing: hs2 shows the whole room.
				if !slices.Equal(got, full) {
					t.Fatalf("hs2 shows %d events, hs1 %d", len(got), len(full))
				}
			} else if seen != 0 {
				t.Fatalf("hs2 shows %d messages sent while bob was away from a room whose history is \"joined\"", seen)
			}
			// Shown or not, the hole was filled: hs2 holds the messages.
			var held int
			if err := mustConnect(t, bob.srv).QueryRow(context.Background(),
				`SELECT count(*) FROM events WHERE event_id = ANY($1) AND NOT outlier`, away).Scan(&held); err != nil {
				t.Fatal(err)
			}
			if held != len(away) {
				t.Fatalf("hs2 holds %d of the %d messages sent while bob was away", held, len(away))
			}

			// Paged again, in other page sizes, the same.
			for _, limit := range []int{1, 50} {
				if again := pageBack(t, bob, room, "", limit); !slices.Equal(again, got) {
					t.Fatalf("paged back by %d: %d events, by 7: %d", limit, len(again), len(got))
				}
			}
		})
	}
}

// TestCatchUpHoleIsBackfilled: hs2 is down while alice sends more than
// hs1's queue sends it and more than get_missing_events fetches (hs1
// catches hs2 up with the newest event only; hs2 asks for at most 500
// events before it and takes the state at the oldest for the rest). The
// events in neither are a hole in hs2's history, which paging /messages
// back from the end fills: every message once, in order.
func TestCatchUpHoleIsBackfilled(t *testing.T) {
	srvs := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
		c.Federation.Queue.CatchUpThreshold = 50
	})
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	first := alice.send(t, room, "before the outage")
	sees(t, bob, room, first)

	bob.srv.Stop(t)
	// At most 50 in the transaction in flight, 500 by get_missing_events
	// from the newest: more than 70 in neither.
	const n = 620
	sent := make([]string, 0, n)
	for i := range n {
		sent = append(sent, alice.send(t, room, fmt.Sprintf("c%d", i)))
	}
	bob.srv.Restart(t)
	// Catch-up and get_missing_events take their time under load: the
	// newest message is waited for in hs2's database, longer than
	// eventually does.
	db := mustConnect(t, bob.srv)
	held := func(ids []string) int {
		var n int
		if err := db.QueryRow(context.Background(),
			`SELECT count(*) FROM events WHERE event_id = ANY($1) AND NOT outlier`, ids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(2 * time.Minute); held(sent[n-1:]) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hs2 did not get the newest message within 2 minutes")
		}
	}
	before := held(sent)
	if before == n {
		t.Fatalf("hs2 got all %d messages without a hole; the test needs one", n)
	}
	t.Logf("hs2 held %d of the %d messages before paging", before, n)
	got := pageBack(t, bob, room, "", 100)
	var msgs []string
	for _, e := range got {
		if slices.Contains(sent, e) {
			msgs = append(msgs, e)
		}
	}
	if !slices.Equal(msgs, sent) {
		t.Fatalf("hs2 pages back through %d of the %d messages (it held %d before paging)", len(msgs), n, before)
	}
}

// TestHoleHistoryHasItsState: the events backfilled into a hole carry the
// state before them, as the events hs1 holds natively do. In the hole
// carol joins, alice names the room and makes the history "joined" for a
// stretch, then "shared" again; it is larger than one /backfill batch, so
// the state before the first batch's oldest event comes from /state_ids.
// On hs2, /context's state and /members?at= at an event of the hole are
// hs1's for the same event, and bob sees the hole's messages but for the
// "joined" stretch (he was not in the room then).
func TestHoleHistoryHasItsState(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, carol, bob := register(t, srvs[0], "alice"), register(t, srvs[0], "carol"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "",
			"content": map[string]any{"history_visibility": "shared"}}}})
	joinRoom := func() {
		bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	}
	joinRoom()
	sees(t, bob, room, alice.send(t, room, "together"))
	bob.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{})
	eventually(t, "hs1 sees bob leave", func() (bool, string) {
		m := membershipOf(t, alice, room, bob.id)
		return m == "leave", m
	})

	sendN := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, alice.send(t, room, fmt.Sprintf("%s %d", prefix, i)))
		}
		return out
	}
	setHV := func(hv string) {
		alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.history_visibility/",
			map[string]any{"history_visibility": hv})
	}
	shown := sendN("filler", 40)
	carol.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room), map[string]any{})
	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.name/", map[string]any{"name": "named in the hole"})
	named := sendN("named", 5)
	shown = append(shown, named...)
	setHV("joined")
	hidden := sendN("joined", 5)
	setHV("shared")
	shown = append(shown, sendN("shared again", 5)...)
	joinRoom()
	sees(t, bob, room, alice.send(t, room, "back"))

	got := pageBack(t, bob, room, "", 10)
	for _, e := range shown {
		if !slices.Contains(got, e) {
			t.Fatalf("hs2 does not show %s of the hole", bob.describe(t, room, []string{e}))
		}
	}
	for _, e := range hidden {
		if slices.Contains(got, e) {
			t.Fatalf("hs2 shows %s, sent while the history was \"joined\" and bob away", alice.describe(t, room, []string{e}))
		}
	}

	// /context at a message of the hole: the state at the last event
	// returned, and /members at the context's start, as hs1 has them.
	// Both servers return the same events around it (alice and bob see
	// the named stretch alike).
	at := named[2]
	type answer struct {
		state, members []string
	}
	ask := func(u user) answer {
		res := u.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/context/"+esc(at)+"?limit=2", nil)
		var a answer
		st, _ := res.Body["state"].([]any)
		for _, e := range st {
			ev := e.(map[string]any)
			a.state = append(a.state, fmt.Sprintf("%v|%v|%v", ev["type"], ev["state_key"], ev["event_id"]))
		}
		slices.Sort(a.state)
		q := "?at=" + url.QueryEscape(res.String("start"))
		mres := u.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/members"+q, nil)
		chunk, _ := mres.Body["chunk"].([]any)
		for _, e := range chunk {
			ev := e.(map[string]any)
			content, _ := ev["content"].(map[string]any)
			a.members = append(a.members, fmt.Sprintf("%v=%v|%v", ev["state_key"], content["membership"], ev["event_id"]))
		}
		slices.Sort(a.members)
		return a
	}
	want, have := ask(alice), ask(bob)
	if len(want.state) == 0 || !slices.Equal(have.state, want.state) {
		t.Errorf("/context state at a message of the hole:\nhs2 %v\nhs1 %v", have.state, want.state)
	}
	if !slices.ContainsFunc(want.members, func(m string) bool { return strings.HasPrefix(m, carol.id+"=join") }) {
		t.Fatalf("hs1's members at the hole lack carol's join: %v", want.members)
	}
	if !slices.Equal(have.members, want.members) {
		t.Errorf("/members?at= a message of the hole:\nhs2 %v\nhs1 %v", have.members, want.members)
	}
}
