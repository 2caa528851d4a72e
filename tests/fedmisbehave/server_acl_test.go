package fedmisbehave

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

// TestADeniedServersPDUsAreIgnoredWithAnError: once a room's
// m.room.server_acl denies hs2, a well-formed, signed, authorised message
// of bob@hs2 in a transaction is ignored with an error for its event id
// (server-server API, "Server Access Control Lists": per PDU), and alice
// never sees it. The same message shape is accepted before the ACL.
func TestADeniedServersPDUsAreIgnoredWithAnError(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	_, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")
	room := must(t, hs1, aliceTok, http.MethodPost, "/_matrix/client/v3/createRoom",
		map[string]any{"preset": "public_chat", "room_version": "11"}).String("room_id")
	must(t, hs2, bobTok, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name=hs1.test", map[string]any{})
	r := &remote{t: t, hs1: hs1, token1: aliceTok, key: hs2.App.SigningKey(), client: hs2.App.FederationClient(), ts: time.Now().UnixMilli()}
	waitFor(t, "bob's join on hs1", func() (bool, string) {
		return r.stateID(room, "m.room.member", bob) != "", ""
	})
	bobID := id.UserID(bob)

	before := r.build(r.key, room, bobID, "m.room.message", nil, `{"msgtype":"m.text","body":"before the ACL"}`)
	if status, answer := r.send("acl1", []json.RawMessage{before.Raw()}, 0); status != http.StatusOK || answer[string(before.EventID())]["error"] != "" {
		t.Fatalf("before the ACL: %d %v, want the message accepted", status, answer)
	}

	must(t, hs1, aliceTok, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.server_acl/",
		map[string]any{"allow": []string{"*"}, "deny": []string{"hs2.test"}})
	after := r.build(r.key, room, bobID, "m.room.message", nil, `{"msgtype":"m.text","body":"after the ACL"}`)
	status, answer := r.send("acl2", []json.RawMessage{after.Raw()}, 0)
	if status != http.StatusOK {
		t.Fatalf("/send answered %d, want 200 with an error for the PDU", status)
	}
	if got := answer[string(after.EventID())]["error"]; !strings.Contains(got, "server_acl") {
		t.Errorf("answer for the denied server's PDU: %q, want an error naming the server ACL", got)
	}
	res := hs1.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(string(after.EventID())), aliceTok, nil)
	if res.Status != http.StatusNotFound {
		t.Errorf("alice reads the denied server's message: %d %s", res.Status, res.Raw)
	}
}
