package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// TestSendJoinOmitMembers: a joining server (hs2's key, requests made by
// hand as a server that supports partial joins would) asks hs1 for a
// reduced send_join answer (omit_members=true, MSC3706). The state comes
// without membership events but those of the heroes in an unnamed room,
// servers_in_room is given, and the auth chain holds what state lacks to
// authorise it and nothing state already has.
func TestSendJoinOmitMembers(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice := register(t, hs1, "alice")
	unnamed := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "public_chat"})
	named := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "public_chat", "name": "Named"})
	var members []string
	for i := range 6 {
		u := register(t, hs1, fmt.Sprintf("member%d", i))
		u.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(unnamed), map[string]any{})
		members = append(members, u.id)
	}
	// An invited member counts as a hero too; a left one does not.
	leaver := register(t, hs1, "leaver")
	leaver.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(unnamed), map[string]any{})
	leaver.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(unnamed)+"/leave", map[string]any{})

	c := hs2.App.FederationClient()
	ctx := context.Background()
	v := roomversion.MustLookup("10")
	sendJoin := func(t *testing.T, room string, user id.UserID, query string) (*fedclient.SendJoinResponse, error) {
		t.Helper()
		tpl, err := c.MakeMembership(ctx, hs1.Name, "join", id.RoomID(room), user, []string{"10"})
		if err != nil {
			t.Fatal(err)
		}
		ev := joinEvent(t, tpl, hs2.Name, hs2.App.SigningKey(), nil)
		path := "/_matrix/federation/v2/send_join/" + url.PathEscape(room) + "/" + url.PathEscape(string(ev.EventID())) + query
		var resp fedclient.SendJoinResponse
		err = c.Do(ctx, hs1.Name, http.MethodPut, path, ev.Raw(), &resp)
		return &resp, err
	}
	parse := func(t *testing.T, raws [][]byte) []*event.Event {
		t.Helper()
		out := make([]*event.Event, 0, len(raws))
		for _, raw := range raws {
			ev, err := event.Parse(v, raw)
			if err != nil {
				t.Fatalf("unparsable event in the answer: %v", err)
			}
			out = append(out, ev)
		}
		return out
	}
	raws := func(resp []json.RawMessage) [][]byte {
		out := make([][]byte, len(resp))
		for i, r := range resp {
			out[i] = r
		}
		return out
	}
	memberKeys := func(evs []*event.Event) []string {
		var out []string
		for _, ev := range evs {
			if ev.Type() == "m.room.member" {
				out = append(out, *ev.StateKey())
			}
		}
		slices.Sort(out)
		return out
	}
	// checkReduced: no event of state repeated in auth_chain, and every
	// auth event of state and of the join found in one or the other.
	checkReduced := func(t *testing.T, resp *fedclient.SendJoinResponse, state, chain []*event.Event) {
		t.Helper()
		if !resp.MembersOmitted {
			t.Error("members_omitted is false")
		}
		if !slices.Equal(resp.ServersInRoom, []string{"hs1.test"}) {
			t.Errorf("servers_in_room %v, want [hs1.test]", resp.ServersInRoom)
		}
		have := map[id.EventID]bool{}
		for _, ev := range state {
			have[ev.EventID()] = true
		}
		for _, ev := range chain {
			if have[ev.EventID()] {
				t.Errorf("auth_chain repeats state event %s (%s)", ev.EventID(), ev.Type())
			}
			have[ev.EventID()] = true
		}
		for _, ev := range append(slices.Clone(state), chain...) {
			for _, a := range ev.AuthEventIDs() {
				if !have[a] {
					t.Errorf("auth event %s of %s (%s) is in neither state nor auth_chain", a, ev.EventID(), ev.Type())
				}
			}
		}
		types := map[string]bool{}
		for _, ev := range state {
			types[ev.Type()] = true
		}
		for _, typ := range []string{"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.history_visibility"} {
			if !types[typ] {
				t.Errorf("state lacks %s", typ)
			}
		}
	}

	t.Run("unnamed room: the heroes' memberships", func(t *testing.T) {
		resp, err := sendJoin(t, unnamed, "@bob:hs2.test", "?omit_members=true")
		if err != nil {
			t.Fatal(err)
		}
		state, chain := parse(t, raws(resp.State)), parse(t, raws(resp.AuthChain))
		checkReduced(t, resp, state, chain)
		// Five heroes, the earliest joined first: alice and the first
		// four members; not the leaver.
		want := append([]string{alice.id}, members[:4]...)
		slices.Sort(want)
		if got := memberKeys(state); !slices.Equal(got, want) {
			t.Errorf("member events in state %v, want the heroes %v", got, want)
		}
		// The full answer (bob joins again) has every membership: alice,
		// the six members, the leaver and bob's first join.
		full, err := sendJoin(t, unnamed, "@bob:hs2.test", "")
		if err != nil {
			t.Fatal(err)
		}
		if full.MembersOmitted || len(memberKeys(parse(t, raws(full.State)))) != 9 {
			t.Errorf("without omit_members: members_omitted %v, %d members", full.MembersOmitted, len(memberKeys(parse(t, raws(full.State)))))
		}
	})

	t.Run("named room: no membership", func(t *testing.T) {
		resp, err := sendJoin(t, named, "@bob:hs2.test", "?omit_members=true")
		if err != nil {
			t.Fatal(err)
		}
		state, chain := parse(t, raws(resp.State)), parse(t, raws(resp.AuthChain))
		checkReduced(t, resp, state, chain)
		if got := memberKeys(state); len(got) != 0 {
			t.Errorf("member events in the state of a named room: %v", got)
		}
		// The creator's join is still there, in the auth chain.
		if got := memberKeys(chain); !slices.Contains(got, alice.id) {
			t.Errorf("auth chain members %v lack the creator's join", got)
		}
		if m := membershipOf(t, alice, named, "@bob:hs2.test"); m != "join" {
			t.Errorf("after a reduced send_join hs1 shows bob's membership %q", m)
		}
	})

	t.Run("omit_members not a boolean", func(t *testing.T) {
		_, err := sendJoin(t, named, "@carl:hs2.test", "?omit_members=yes")
		if status, code, body := remoteErr(t, err); status != 400 || code != "M_INVALID_PARAM" {
			t.Errorf("%d %s %s, want 400 M_INVALID_PARAM", status, code, body)
		}
	})
}
