package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
