package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// TestServerACLGuardsEveryRoomEndpoint: once a room's m.room.server_acl
// denies hs2, every room-scoped endpoint the spec lists as protected
// (server-server API, "Server Access Control Lists"), and the other
// room-scoped reads Parley serves, answer hs2 403 M_FORBIDDEN for that
// room. The same requests before the ACL was set are not refused by it,
// so each refusal is the ACL's doing and not the request's.
func TestServerACLGuardsEveryRoomEndpoint(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob, carol := register(t, hs1, "alice"), register(t, hs2, "bob"), register(t, hs1, "carol")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(hs1.Name), map[string]any{})
	eventually(t, "hs1 sees bob's join", func() (bool, string) {
		m := membershipOf(t, alice, room, bob.id)
		return m == "join", m
	})
	last := alice.send(t, room, "something to read")
	c := hs2.App.FederationClient()
	ctx := context.Background()

	// A real invite of carol by bob, which hs1 signs while hs2 is
	// allowed: made from a make_leave template of bob's.
	tpl, err := c.MakeMembership(ctx, hs1.Name, "leave", id.RoomID(room), id.UserID(bob.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	invite := joinEvent(t, tpl, hs2.Name, hs2.App.SigningKey(), func(v canonicaljson.Value) canonicaljson.Value {
		return v.With("state_key", canonicaljson.StringValue(carol.id)).
			With("content", canonicaljson.ObjectValue().With("membership", canonicaljson.StringValue("invite")))
	})

	const v1, v2 = "/_matrix/federation/v1", "/_matrix/federation/v2"
	r, e := esc(room), esc(last)
	stranger := esc("@dave:" + string(hs2.Name))
	now := time.Now().Add(time.Hour).UnixMilli()
	requests := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, v1 + "/make_join/" + r + "/" + stranger + "?ver=11", nil},
		{http.MethodPut, v1 + "/send_join/" + r + "/" + e, map[string]any{}},
		{http.MethodPut, v2 + "/send_join/" + r + "/" + e, map[string]any{}},
		{http.MethodGet, v1 + "/make_leave/" + r + "/" + esc(bob.id), nil},
		{http.MethodPut, v1 + "/send_leave/" + r + "/" + e, map[string]any{}},
		{http.MethodPut, v2 + "/send_leave/" + r + "/" + e, map[string]any{}},
		{http.MethodGet, v1 + "/make_knock/" + r + "/" + stranger + "?ver=11", nil},
		{http.MethodPut, v1 + "/send_knock/" + r + "/" + e, map[string]any{}},
		{http.MethodPut, v2 + "/invite/" + r + "/" + esc(string(invite.EventID())),
			map[string]any{"room_version": "11", "event": json.RawMessage(invite.Raw()), "invite_room_state": []any{}}},
		{http.MethodPut, v1 + "/exchange_third_party_invite/" + r, map[string]any{}},
		{http.MethodGet, v1 + "/state/" + r + "?event_id=" + e, nil},
		{http.MethodGet, v1 + "/state_ids/" + r + "?event_id=" + e, nil},
		{http.MethodGet, v1 + "/backfill/" + r + "?v=" + e + "&limit=10", nil},
		{http.MethodGet, v1 + "/event_auth/" + r + "/" + e, nil},
		{http.MethodPost, v1 + "/get_missing_events/" + r,
			map[string]any{"earliest_events": []string{}, "latest_events": []string{last}, "limit": 10}},
		{http.MethodGet, v1 + "/timestamp_to_event/" + r + fmt.Sprintf("?ts=%d&dir=b", now), nil},
		{http.MethodGet, v1 + "/event/" + e, nil},
	}
	call := func(method, path string, body any) (int, string, string) {
		t.Helper()
		var out map[string]any
		err := c.Do(ctx, hs1.Name, method, path, body, &out)
		status, code, raw := remoteErr(t, err)
		return status, code, string(raw)
	}
	deniedByACL := func(status int, code, body string) bool {
		return status == http.StatusForbidden && code == "M_FORBIDDEN" && strings.Contains(body, "ACL")
	}

	for _, req := range requests {
		status, code, body := call(req.method, req.path, req.body)
		t.Logf("before the ACL: %s %s: %d %s", req.method, req.path, status, code)
		if deniedByACL(status, code, body) {
			t.Fatalf("%s %s refused by an ACL before there was one: %d %s %s", req.method, req.path, status, code, body)
		}
	}

	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+r+"/state/m.room.server_acl/",
		map[string]any{"allow": []string{"*"}, "deny": []string{string(hs2.Name)}})
	for _, req := range requests {
		name := strings.SplitN(req.path, "?", 2)[0]
		for old, placeholder := range map[string]string{r: "{roomId}", e: "{eventId}", esc(string(invite.EventID())): "{eventId}", stranger: "{userId}", esc(bob.id): "{userId}"} {
			name = strings.ReplaceAll(name, old, placeholder)
		}
		t.Run(req.method+" "+name, func(t *testing.T) {
			if status, code, body := call(req.method, req.path, req.body); !deniedByACL(status, code, body) {
				t.Errorf("%d %s %s, want 403 M_FORBIDDEN for the server ACL", status, code, body)
			}
		})
	}
}

// TestServerACLDropsTypingAndReceiptEDUs: the spec's rule for EDUs in a
// transaction — a typing notification or the receipts for a room whose
// server ACL denies the sending server are ignored — through the whole
// path (X-Matrix, /send, the app's wiring of the ACL into the EDU
// handler) to a client's /sync. Each transaction ends with a presence EDU
// (not room-scoped, never denied): once alice's /sync shows it, the EDUs
// before it in the transaction were handled.
func TestServerACLDropsTypingAndReceiptEDUs(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob, bob2 := register(t, hs1, "alice"), register(t, hs2, "bob"), register(t, hs2, "bob2")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	for _, u := range []user{bob, bob2} {
		u.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(hs1.Name), map[string]any{})
		eventually(t, "hs1 sees "+u.id+" join", func() (bool, string) {
			m := membershipOf(t, alice, room, u.id)
			return m == "join", m
		})
	}
	c := hs2.App.FederationClient()
	ctx := context.Background()
	since := alice.must(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil).String("next_batch")

	// send puts one transaction of hs2's: typer typing, bob's read
	// receipt of readID, then bob's presence with marker.
	send := func(txnID string, typer user, readID, marker string) {
		t.Helper()
		edus := []map[string]any{
			{"edu_type": "m.typing", "content": map[string]any{"room_id": room, "user_id": typer.id, "typing": true}},
			{"edu_type": "m.receipt", "content": map[string]any{room: map[string]any{"m.read": map[string]any{
				bob.id: map[string]any{"event_ids": []string{readID}, "data": map[string]any{"ts": time.Now().UnixMilli()}}}}}},
			{"edu_type": "m.presence", "content": map[string]any{"push": []map[string]any{{
				"user_id": bob.id, "presence": "online", "status_msg": marker, "last_active_ago": 0, "currently_active": true}}}},
		}
		body := map[string]any{"origin": string(hs2.Name), "origin_server_ts": time.Now().UnixMilli(), "pdus": []any{}, "edus": edus}
		if err := c.Do(ctx, hs1.Name, http.MethodPut, "/_matrix/federation/v1/send/"+txnID, body, nil); err != nil {
			t.Fatalf("/send %s: %v", txnID, err)
		}
	}
	// seen follows alice's /sync until bob's presence carries marker and
	// reports whether a typing event naming typer, and bob's receipt of
	// readID, came before it.
	seen := func(typer user, readID, marker string) (typing, receipt bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			res := alice.must(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=5000&since="+url.QueryEscape(since), nil)
			since = res.String("next_batch")
			var b struct {
				Rooms struct {
					Join map[string]struct {
						Ephemeral struct {
							Events []struct {
								Type    string         `json:"type"`
								Content map[string]any `json:"content"`
							} `json:"events"`
						} `json:"ephemeral"`
					} `json:"join"`
				} `json:"rooms"`
				Presence struct {
					Events []struct {
						Sender  string         `json:"sender"`
						Content map[string]any `json:"content"`
					} `json:"events"`
				} `json:"presence"`
			}
			if err := json.Unmarshal(res.Raw, &b); err != nil {
				t.Fatal(err)
			}
			for _, e := range b.Rooms.Join[room].Ephemeral.Events {
				switch e.Type {
				case "m.typing":
					ids, _ := e.Content["user_ids"].([]any)
					typing = typing || slices.Contains(ids, any(typer.id))
				case "m.receipt":
					byType, _ := e.Content[readID].(map[string]any)
					read, _ := byType["m.read"].(map[string]any)
					_, ok := read[bob.id]
					receipt = receipt || ok
				}
			}
			for _, e := range b.Presence.Events {
				if e.Sender == bob.id && e.Content["status_msg"] == marker {
					return typing, receipt
				}
			}
		}
		t.Fatalf("bob's presence %q never reached alice", marker)
		return false, false
	}

	first := alice.send(t, room, "first")
	send("allowed", bob2, first, "before the ACL")
	if typing, receipt := seen(bob2, first, "before the ACL"); !typing || !receipt {
		t.Fatalf("before the ACL: typing seen %v, receipt seen %v; want both", typing, receipt)
	}

	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.server_acl/",
		map[string]any{"allow": []string{"*"}, "deny": []string{string(hs2.Name)}})
	second := alice.send(t, room, "second")
	// Now bob types: bob2's typing running out meanwhile does not name him.
	send("denied", bob, second, "after the ACL")
	if typing, receipt := seen(bob, second, "after the ACL"); typing || receipt {
		t.Errorf("after the ACL denied hs2: typing seen %v, receipt seen %v; want neither", typing, receipt)
	}
}
