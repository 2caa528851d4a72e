package fedstate

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// syncersOf starts, for each account, a client with and one without
// use_state_after.
func syncersOf(t *testing.T, room string, as ...account) []*syncer {
	t.Helper()
	var out []*syncer
	for _, a := range as {
		out = append(out, newSyncer(t, a, room, false), newSyncer(t, a, room, true))
	}
	return out
}

// forkWhileHS1IsDown makes the room's graph fork on hs1: with hs1 stopped,
// bob's server writes bobWrites (queued for hs1); hs1 comes back and
// alice writes aliceWrites at once, before hs2's queue delivers bob's
// events, which then arrive built on the old head.
func forkWhileHS1IsDown(t *testing.T, alice account, bobWrites, aliceWrites func()) {
	t.Helper()
	alice.srv.Stop(t)
	bobWrites()
	alice.srv.Restart(t)
	aliceWrites()
}

func TestSyncEndsWithTheResolvedStateAfterAPowerLevelRace(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	room, alice, bob, carol := joinedRoom(t, srvs, true)
	syncers := syncersOf(t, room, alice, carol)
	pl := func(a account, defaults int) {
		a.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.power_levels/", map[string]any{
			"users": map[string]any{alice.id: 100, bob.id: 100}, "users_default": defaults,
		})
	}
	forkWhileHS1IsDown(t, alice, func() { pl(bob, 20) }, func() { pl(alice, 10) })
	want := converge(t, room, []account{alice, bob, carol}, syncers)
	if !forked(t, alice.srv, room) || !forked(t, bob.srv, room) {
		t.Fatalf("the graph did not fork on both servers (hs1 %v, hs2 %v)", forked(t, alice.srv, room), forked(t, bob.srv, room))
	}
	// Clients that start now get it from an initial sync.
	converge(t, room, []account{alice, carol}, syncersOf(t, room, alice, carol))
	checkStateReads(t, alice, room)
	checkStateReads(t, carol, room)

	// The fork closes with one more event from each server; still the same.
	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/a1", map[string]any{"msgtype": "m.text", "body": "after"})
	bob.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/b1", map[string]any{"msgtype": "m.text", "body": "after"})
	after := converge(t, room, []account{alice, bob, carol}, syncers)
	if d := diff(want, after); d != "" {
		t.Fatalf("the state moved after the fork closed: %s", d)
	}
}

func TestSyncEndsWithTheResolvedStateAfterABanRacingAMessage(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	room, alice, bob, carol := joinedRoom(t, srvs, false)
	syncers := syncersOf(t, room, alice, carol)
	forkWhileHS1IsDown(t, alice, func() {
		bob.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/race", map[string]any{"msgtype": "m.text", "body": "racing"})
	}, func() {
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/ban", map[string]any{"user_id": bob.id})
	})
	want := converge(t, room, []account{alice, carol}, syncers)
	if !forked(t, alice.srv, room) {
		t.Fatal("the graph did not fork on hs1")
	}
	if res := alice.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(bob.id), nil); res.String("membership") != "ban" {
		t.Fatalf("bob's membership on hs1: %s", res.Raw)
	}
	converge(t, room, []account{alice, carol}, syncersOf(t, room, alice, carol))
	checkStateReads(t, alice, room)
	checkStateReads(t, carol, room)
	// The room goes on: carol's next message reaches alice's clients, the
	// state stays.
	carol.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/c1", map[string]any{"msgtype": "m.text", "body": "still here"})
	if d := diff(want, converge(t, room, []account{alice, carol}, syncers)); d != "" {
		t.Fatalf("the state moved: %s", d)
	}
}
