package federation_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

// Multi-server tests of joins, invites, leaves, kicks, bans and knocks
// (server-server API, "Joining Rooms" … "Knocking upon a room"): real
// Parley servers on loopback, each with its own database, over real TLS.

const e2ePassword = "correct horse battery"

// user is a registered account on one test server.
type user struct {
	srv   *apptest.Server
	id    string
	token string
}

func register(t *testing.T, srv *apptest.Server, localpart string) user {
	t.Helper()
	uid, tok := srv.Register(t, localpart, e2ePassword)
	return user{srv: srv, id: uid, token: tok}
}

func (u user) do(t *testing.T, method, path string, body any) apptest.Response {
	t.Helper()
	return u.srv.Do(t, method, path, u.token, body)
}

func (u user) must(t *testing.T, method, path string, body any) apptest.Response {
	t.Helper()
	res := u.do(t, method, path, body)
	apptest.MustStatus(t, res, http.StatusOK)
	return res
}

func esc(s string) string { return url.PathEscape(s) }

func (u user) createRoom(t *testing.T, body map[string]any) string {
	t.Helper()
	return u.must(t, http.MethodPost, "/_matrix/client/v3/createRoom", body).String("room_id")
}

func (u user) send(t *testing.T, room, text string) string {
	t.Helper()
	path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%d", esc(room), time.Now().UnixNano())
	return u.must(t, http.MethodPut, path, map[string]any{"msgtype": "m.text", "body": text}).String("event_id")
}

// eventually polls cond until it holds or 15 seconds pass (federation
// delivery is asynchronous).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within 15s; last: %s", what, last)
}

// stateIDs is the room's current state as the user's server sees it, as
// sorted "type|state_key|event_id" entries.
func (u user) stateIDs(t *testing.T, room string) []string {
	t.Helper()
	res := u.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state", nil)
	if res.Status != http.StatusOK {
		return []string{fmt.Sprintf("status %d %s", res.Status, res.Raw)}
	}
	var evs []map[string]any
	if err := json.Unmarshal(res.Raw, &evs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%v|%v|%v", ev["type"], ev["state_key"], ev["event_id"]))
	}
	slices.Sort(out)
	return out
}

// membershipOf is the user's membership of room as viewer's server sees it.
func membershipOf(t *testing.T, viewer user, room, of string) string {
	t.Helper()
	res := viewer.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(of), nil)
	if res.Status != http.StatusOK {
		return fmt.Sprintf("status %d", res.Status)
	}
	return res.String("membership")
}

// timeline is the event ids of the room's history as u's server shows it
// (GET /messages backwards from the end), oldest first.
func (u user) timeline(t *testing.T, room string) []string {
	t.Helper()
	res := u.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?dir=b&limit=200", nil)
	if res.Status != http.StatusOK {
		return []string{fmt.Sprintf("status %d %s", res.Status, res.Raw)}
	}
	chunk, _ := res.Body["chunk"].([]any)
	var out []string
	for _, c := range chunk {
		ev, _ := c.(map[string]any)
		out = append(out, fmt.Sprint(ev["event_id"]))
	}
	slices.Reverse(out)
	return out
}

// describe names the events of ids for a failure message: type, sender
// and body or membership, as u's server shows them.
func (u user) describe(t *testing.T, room string, ids []string) string {
	t.Helper()
	var out []string
	for _, e := range ids {
		res := u.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(e), nil)
		content, _ := res.Body["content"].(map[string]any)
		out = append(out, fmt.Sprintf("%s %v %v %v%v", e[:6], res.Body["type"], res.Body["sender"], content["body"], content["membership"]))
	}
	return strings.Join(out, "; ")
}

// sameState waits until every user's server shows the same current state
// of room.
func sameState(t *testing.T, room string, users ...user) {
	t.Helper()
	eventually(t, "same state on every server", func() (bool, string) {
		want := users[0].stateIDs(t, room)
		for _, u := range users[1:] {
			if got := u.stateIDs(t, room); !slices.Equal(got, want) {
				return false, fmt.Sprintf("%s sees %v\n%s sees %v", users[0].srv.Name, want, u.srv.Name, got)
			}
		}
		return true, ""
	})
}

// sees waits until u's server has event id in the room's timeline.
func sees(t *testing.T, u user, room, eventID string) {
	t.Helper()
	eventually(t, u.id+" sees "+eventID, func() (bool, string) {
		tl := u.timeline(t, room)
		return slices.Contains(tl, eventID), strings.Join(tl, ",")
	})
}

// sameHistory checks that the joiner's server holds the history since
// its user's join (joinID) exactly as the resident: the same events in the
// same order, none missing, none extra. What it backfilled from before
// the join is /messages' business (rooms/backfill.go) and is only checked
// for being events the resident has.
func sameHistory(t *testing.T, room, joinID string, resident, joiner user) {
	t.Helper()
	eventually(t, "same history", func() (bool, string) {
		full, theirs := resident.timeline(t, room), joiner.timeline(t, room)
		at := slices.Index(full, joinID)
		if at < 0 {
			return false, "the resident does not show the join " + joinID
		}
		since := full[at:]
		var got []string
		for _, e := range theirs {
			if !slices.Contains(full, e) {
				return false, "the joiner shows an event the resident does not: " + joiner.describe(t, room, []string{e})
			}
			if slices.Contains(since, e) {
				got = append(got, e)
			}
		}
		return slices.Equal(got, since),
			fmt.Sprintf("%s\nvs %s", resident.describe(t, room, since), joiner.describe(t, room, got))
	})
}

// joinEventID is the event id of user's current membership as viewer's
// server shows it.
func joinEventID(t *testing.T, viewer user, room, of string) string {
	t.Helper()
	res := viewer.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state", nil)
	var evs []map[string]any
	if err := json.Unmarshal(res.Raw, &evs); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev["type"] == "m.room.member" && ev["state_key"] == of {
			return fmt.Sprint(ev["event_id"])
		}
	}
	t.Fatalf("%s has no member event of %s", viewer.srv.Name, of)
	return ""
}

func TestRemoteJoinEveryRoomVersion(t *testing.T) {
	srvs := apptest.StartFederation(t, 3)
	alice, bob, carol := register(t, srvs[0], "alice"), register(t, srvs[1], "bob"), register(t, srvs[2], "carol")
	for _, ver := range []string{"1", "10", "11", "12"} {
		t.Run("room version "+ver, func(t *testing.T) {
			room := alice.createRoom(t, map[string]any{"room_version": ver, "preset": "public_chat"})
			alice.send(t, room, "before bob")

			res := bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
			if res.String("room_id") != room {
				t.Fatalf("join answered %s", res.Raw)
			}
			if m := membershipOf(t, bob, room, bob.id); m != "join" {
				t.Fatalf("bob's own server shows membership %q", m)
			}
			eventually(t, "hs1 sees bob's join", func() (bool, string) {
				m := membershipOf(t, alice, room, bob.id)
				return m == "join", m
			})
			sameState(t, room, alice, bob)

			fromAlice := alice.send(t, room, "hello bob")
			sees(t, bob, room, fromAlice)
			fromBob := bob.send(t, room, "hello alice")
			sees(t, alice, room, fromBob)
			sameHistory(t, room, joinEventID(t, bob, room, bob.id), alice, bob)

			// A third server joins through the second, which joined over
			// federation itself: hs2 is the resident here.
			carol.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/join?via="+string(bob.srv.Name), map[string]any{})
			eventually(t, "hs1 sees carol's join", func() (bool, string) {
				m := membershipOf(t, alice, room, carol.id)
				return m == "join", m
			})
			fromCarol := carol.send(t, room, "hello both")
			sees(t, alice, room, fromCarol)
			sees(t, bob, room, fromCarol)
			sameState(t, room, alice, bob, carol)

			bob.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{})
			eventually(t, "hs1 and hs3 see bob leave", func() (bool, string) {
				m1, m3 := membershipOf(t, alice, room, bob.id), membershipOf(t, carol, room, bob.id)
				return m1 == "leave" && m3 == "leave", m1 + " " + m3
			})
			last := alice.send(t, room, "after bob")
			sees(t, carol, room, last)
			sameState(t, room, alice, carol)
			sameHistory(t, room, joinEventID(t, carol, room, carol.id), alice, carol)

			// Bob's server kept the room as it was when he left: coming
			// back is a remote join again, through any resident.
			bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(carol.srv.Name), map[string]any{})
			eventually(t, "hs1 sees bob back", func() (bool, string) {
				m := membershipOf(t, alice, room, bob.id)
				return m == "join", m
			})
			back := bob.send(t, room, "back again")
			sees(t, alice, room, back)
			sees(t, carol, room, back)
			sameState(t, room, alice, bob, carol)
		})
	}
}

func TestRemoteInviteKickBanAndThirdServer(t *testing.T) {
	srvs := apptest.StartFederation(t, 3)
	alice, bob, carol := register(t, srvs[0], "alice"), register(t, srvs[1], "bob"), register(t, srvs[2], "carol")
	room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat", "room_alias_name": "private", "name": "Private room"})
	alias := "#private:" + string(alice.srv.Name)

	// A remote user's join without an invite is refused by the resident.
	res := bob.do(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	if res.Status != http.StatusForbidden {
		t.Fatalf("uninvited join: %d %s", res.Status, res.Raw)
	}

	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": bob.id})
	if m := membershipOf(t, alice, room, bob.id); m != "invite" {
		t.Fatalf("hs1 shows bob's membership %q after the invite", m)
	}
	eventually(t, "bob sees the invite in /sync with the room's name", func() (bool, string) {
		res := bob.do(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil)
		invites, _ := res.Body["rooms"].(map[string]any)["invite"].(map[string]any)
		inv, _ := invites[room].(map[string]any)
		return strings.Contains(fmt.Sprint(inv["invite_state"]), "Private room"), string(res.Raw)
	})

	// Bob joins by alias: resolved through hs1's /query/directory.
	res = bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(alias), map[string]any{})
	if res.String("room_id") != room {
		t.Fatalf("join by alias answered %s", res.Raw)
	}
	sameState(t, room, alice, bob)
	msg := bob.send(t, room, "hi from hs2")
	sees(t, alice, room, msg)

	// A kick by the resident reaches bob's server.
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/kick", map[string]any{"user_id": bob.id, "reason": "out"})
	eventually(t, "hs2 sees the kick", func() (bool, string) {
		m := membershipOf(t, bob, room, bob.id)
		return m == "leave", m
	})

	// Invite carol on a third server; she joins; every server agrees.
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": carol.id})
	carol.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/join?server_name="+string(alice.srv.Name), map[string]any{})
	fromCarol := carol.send(t, room, "hi from hs3")
	sees(t, alice, room, fromCarol)

	// Ban: bob may not come back, even when invited again first.
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/ban", map[string]any{"user_id": bob.id})
	res = alice.do(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": bob.id})
	if res.Status != http.StatusForbidden {
		t.Errorf("invite of a banned user: %d %s", res.Status, res.Raw)
	}
	eventually(t, "hs3 sees the ban", func() (bool, string) {
		m := membershipOf(t, carol, room, bob.id)
		return m == "ban", m
	})
	res = bob.do(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(alice.srv.Name), map[string]any{})
	if res.Status != http.StatusForbidden {
		t.Errorf("banned user's join: %d %s", res.Status, res.Raw)
	}
	sameState(t, room, alice, carol)
	sameHistory(t, room, joinEventID(t, carol, room, carol.id), alice, carol)
}

func TestRejectRemoteInvite(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "private_chat"})
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": bob.id})

	// Bob's server is not in the room: the rejection goes through
	// make_leave/send_leave on the inviting server.
	bob.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{"reason": "no thanks"})
	eventually(t, "hs1 sees the rejection", func() (bool, string) {
		m := membershipOf(t, alice, room, bob.id)
		return m == "leave", m
	})
	eventually(t, "bob's /sync shows the room left", func() (bool, string) {
		res := bob.do(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil)
		rooms, _ := res.Body["rooms"].(map[string]any)
		invites, _ := rooms["invite"].(map[string]any)
		_, invited := invites[room]
		return !invited, string(res.Raw)
	})
}

func TestRemoteKnockAndRestrictedJoin(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	alice, bob := register(t, srvs[0], "alice"), register(t, srvs[1], "bob")

	t.Run("knock", func(t *testing.T) {
		room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat",
			"initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{"join_rule": "knock"}}}})
		bob.must(t, http.MethodPost, "/_matrix/client/v3/knock/"+esc(room)+"?via="+string(alice.srv.Name), map[string]any{"reason": "let me in"})
		if m := membershipOf(t, alice, room, bob.id); m != "knock" {
			t.Fatalf("hs1 shows bob's membership %q after the knock", m)
		}
		eventually(t, "bob's /sync shows the knock with the room's stripped state", func() (bool, string) {
			res := bob.do(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil)
			knocks, _ := res.Body["rooms"].(map[string]any)["knock"].(map[string]any)
			k, _ := knocks[room].(map[string]any)
			return strings.Contains(fmt.Sprint(k["knock_state"]), "m.room.create"), string(res.Raw)
		})

		// Retracting the knock goes through make_leave/send_leave.
		bob.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{})
		if m := membershipOf(t, alice, room, bob.id); m != "leave" {
			t.Fatalf("hs1 shows bob's membership %q after the retraction", m)
		}
		bob.must(t, http.MethodPost, "/_matrix/client/v3/knock/"+esc(room)+"?via="+string(alice.srv.Name), map[string]any{})
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": bob.id})
		bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(alice.srv.Name), map[string]any{})
		sameState(t, room, alice, bob)
	})

	t.Run("restricted join authorised by the resident", func(t *testing.T) {
		space := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "public_chat"})
		bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(space)+"?via="+string(alice.srv.Name), map[string]any{})
		room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat",
			"initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
				"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": space}}}}}})
		eventually(t, "hs1 sees bob in the space", func() (bool, string) {
			m := membershipOf(t, alice, space, bob.id)
			return m == "join", m
		})
		bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(alice.srv.Name), map[string]any{})
		res := alice.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(bob.id), nil)
		if res.String("join_authorised_via_users_server") != alice.id {
			t.Errorf("the join is not authorised by alice: %s", res.Raw)
		}
		sameState(t, room, alice, bob)

		// A user in none of the allowed rooms is refused.
		dave := register(t, srvs[1], "dave")
		res = dave.do(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(alice.srv.Name), map[string]any{})
		if res.Status != http.StatusForbidden {
			t.Errorf("restricted join of an outsider: %d %s", res.Status, res.Raw)
		}
	})
}

// TestRestrictedJoinFallsBackToAServerThatCanGrant: the first server the
// joiner asks is in the room but none of its members may invite, so it
// answers M_UNABLE_TO_GRANT_JOIN; the joiner tries the next server, whose
// admin authorises the join.
func TestRestrictedJoinFallsBackToAServerThatCanGrant(t *testing.T) {
	srvs := apptest.StartFederation(t, 3)
	carol, bob, dave := register(t, srvs[0], "carol"), register(t, srvs[1], "bob"), register(t, srvs[2], "dave")
	hs3 := string(dave.srv.Name)
	space := dave.createRoom(t, map[string]any{"room_version": "12", "preset": "public_chat"})
	room := dave.createRoom(t, map[string]any{"room_version": "12", "preset": "private_chat",
		"power_level_content_override": map[string]any{"invite": 50},
		"initial_state": []map[string]any{{"type": "m.room.join_rules", "state_key": "", "content": map[string]any{
			"join_rule": "restricted", "allow": []map[string]any{{"type": "m.room_membership", "room_id": space}}}}}})
	carol.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(space)+"?via="+hs3, map[string]any{})
	carol.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+hs3, map[string]any{})
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(space)+"?via="+hs3, map[string]any{})
	eventually(t, "hs1 sees bob in the space", func() (bool, string) {
		m := membershipOf(t, carol, space, bob.id)
		return m == "join", m
	})

	// hs1 alone cannot grant the join (a room version 12 id names no
	// server to fall back on).
	res := bob.do(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(carol.srv.Name), map[string]any{})
	if res.Status != http.StatusBadRequest || res.Errcode() != "M_UNABLE_TO_GRANT_JOIN" {
		t.Fatalf("join through hs1 only: %d %s", res.Status, res.Raw)
	}
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?via="+string(carol.srv.Name)+"&via="+hs3, map[string]any{})
	res = dave.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(bob.id), nil)
	if res.String("join_authorised_via_users_server") != dave.id {
		t.Errorf("the join is not authorised by dave: %s", res.Raw)
	}
	sameState(t, room, dave, bob, carol)
}
