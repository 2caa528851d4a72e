package federation_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// TestInviteFallsBackToV1: old.test is a server that only has the v1
// invite endpoint (v2 answers 404 M_UNRECOGNIZED). An invite to a room of
// version 1 reaches it through v1, with the stripped state in unsigned,
// and its signed answer ([200, {"event": …}]) is accepted; a room of a
// later version cannot be invited to through v1, and the client is told.
func TestInviteFallsBackToV1(t *testing.T) {
	oldAddr := apptest.FreeAddr(t)
	srvs := apptest.StartFederation(t, 1, func(cfg *config.Config) {
		cfg.Federation.Resolve["old.test"] = oldAddr
	})
	hs1 := srvs[0]
	old := fedtest.StartDouble(t, hs1.CA, "old.test", oldAddr)
	var mu sync.Mutex
	var v1Bodies []map[string]json.RawMessage
	v2Calls := 0
	old.Handle("PUT /_matrix/federation/v2/invite/{roomId}/{eventId}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v2Calls++
		mu.Unlock()
		fedtest.WriteJSON(w, http.StatusNotFound, map[string]string{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})
	})
	old.Handle("PUT /_matrix/federation/v1/invite/{roomId}/{eventId}", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			fedtest.WriteJSON(w, 400, map[string]string{"errcode": "M_NOT_JSON"})
			return
		}
		mu.Lock()
		v1Bodies = append(v1Bodies, obj)
		mu.Unlock()
		// Sign it as a v1 server would: the event as received, our
		// signature added.
		val, err := canonicaljson.Parse(raw, false)
		if err != nil {
			fedtest.WriteJSON(w, 400, map[string]string{"errcode": "M_BAD_JSON"})
			return
		}
		signed, err := event.HashAndSign(roomversion.MustLookup("1"), val, old.Name, old.Key)
		if err != nil {
			fedtest.WriteJSON(w, 500, map[string]string{"errcode": "M_UNKNOWN"})
			return
		}
		fedtest.WriteJSON(w, http.StatusOK, []any{200, map[string]json.RawMessage{"event": canonicaljson.Encode(signed)}})
	})

	alice := register(t, hs1, "alice")
	const carol = "@carol:old.test"
	v1Room := alice.createRoom(t, map[string]any{"room_version": "1", "preset": "private_chat", "name": "Old times"})
	alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(v1Room)+"/invite", map[string]any{"user_id": carol})
	if m := membershipOf(t, alice, v1Room, carol); m != "invite" {
		t.Fatalf("carol's membership after the v1 invite: %q", m)
	}
	mu.Lock()
	if v2Calls != 1 || len(v1Bodies) != 1 {
		t.Fatalf("%d v2 and %d v1 invite requests, want 1 and 1", v2Calls, len(v1Bodies))
	}
	body := v1Bodies[0]
	mu.Unlock()
	var unsigned struct {
		InviteRoomState []struct {
			Type string `json:"type"`
		} `json:"invite_room_state"`
	}
	_ = json.Unmarshal(body["unsigned"], &unsigned)
	var types []string
	for _, st := range unsigned.InviteRoomState {
		types = append(types, st.Type)
	}
	if joined := strings.Join(types, ","); !strings.Contains(joined, "m.room.create") || !strings.Contains(joined, "m.room.name") {
		t.Errorf("invite_room_state types %v, want the create event and the name", types)
	}
	if string(body["type"]) != `"m.room.member"` || string(body["state_key"]) != `"`+carol+`"` {
		t.Errorf("the v1 body is not the invite event: %v", body)
	}

	// A room of version 10: v1 cannot carry it.
	v10Room := alice.createRoom(t, map[string]any{"room_version": "10", "preset": "private_chat"})
	res := alice.do(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(v10Room)+"/invite", map[string]any{"user_id": carol})
	if res.Status != http.StatusBadRequest || res.Errcode() != "M_UNSUPPORTED_ROOM_VERSION" {
		t.Errorf("invite to a v10 room through a v1-only server: %d %s", res.Status, res.Raw)
	}
	if m := membershipOf(t, alice, v10Room, carol); m != "status 404" {
		t.Errorf("a failed invite left carol's membership %q", m)
	}
	mu.Lock()
	if len(v1Bodies) != 1 {
		t.Errorf("the v10 invite was sent through v1")
	}
	mu.Unlock()
}

// TestInboundInviteV1: an older server invites one of our users through
// PUT /v1/invite: the body is the event, the answer [200, {"event": …}]
// signed by us, and the invite shows in the user's /sync.
func TestInboundInviteV1(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice := register(t, hs1, "alice")
	c := hs2.App.FederationClient()
	ctx := context.Background()
	v := roomversion.MustLookup("1")
	const room = "!old:hs2.test"
	sk := alice.id
	ev, err := event.Build(v, event.Proto{Sender: "@bob:hs2.test", Type: "m.room.member", StateKey: &sk,
		Content: json.RawMessage(`{"membership":"invite"}`), RoomID: room,
		PrevEvents: event.Refs("$prev:hs2.test"), AuthEvents: event.Refs("$create:hs2.test"),
		Depth: 5, OriginServerTS: 1}, hs2.Name, hs2.App.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	// The create event of the stripped state says version 1 (no
	// room_version).
	state := []any{
		map[string]any{"type": "m.room.create", "state_key": "", "sender": "@bob:hs2.test", "content": map[string]any{"creator": "@bob:hs2.test"}},
		map[string]any{"type": "m.room.name", "state_key": "", "sender": "@bob:hs2.test", "content": map[string]any{"name": "Vintage"}},
	}
	obj := map[string]any{}
	if err := json.Unmarshal(ev.Raw(), &obj); err != nil {
		t.Fatal(err)
	}
	obj["unsigned"] = map[string]any{"invite_room_state": state}
	var resp []json.RawMessage
	path := "/_matrix/federation/v1/invite/" + esc(room) + "/" + esc(string(ev.EventID()))
	if err := c.Do(ctx, hs1.Name, http.MethodPut, path, obj, &resp); err != nil {
		t.Fatalf("v1 invite: %v", err)
	}
	var inner struct {
		Event json.RawMessage `json:"event"`
	}
	if len(resp) != 2 || string(resp[0]) != "200" || json.Unmarshal(resp[1], &inner) != nil {
		t.Fatalf("v1 answer %s, want [200, {\"event\": …}]", resp)
	}
	signed, err := event.Parse(v, inner.Event)
	if err != nil || signed.EventID() != ev.EventID() {
		t.Fatalf("the answer's event: %v", err)
	}
	if err := event.Verify(ctx, signed, hs2.App.Keyring().VerifyKey); err != nil {
		t.Errorf("the signed invite does not verify: %v", err)
	}
	if _, ok := signed.Signatures()[hs1.Name]; !ok {
		t.Errorf("hs1 did not sign the v1 invite")
	}
	eventually(t, "alice sees the v1 invite in /sync with its stripped state", func() (bool, string) {
		res := alice.do(t, http.MethodGet, "/_matrix/client/v3/sync?timeout=0", nil)
		invites, _ := res.Body["rooms"].(map[string]any)["invite"].(map[string]any)
		inv, ok := invites[room]
		return ok && strings.Contains(mustMarshal(inv), "Vintage"), string(res.Raw)
	})

	// A v1 invite that is not an invite is refused like a v2 one.
	sk2 := alice.id
	notInvite, err := event.Build(v, event.Proto{Sender: "@bob:hs2.test", Type: "m.room.member", StateKey: &sk2,
		Content: json.RawMessage(`{"membership":"join"}`), RoomID: room,
		PrevEvents: event.Refs("$prev:hs2.test"), AuthEvents: event.Refs("$create:hs2.test"),
		Depth: 6, OriginServerTS: 2}, hs2.Name, hs2.App.SigningKey())
	if err != nil {
		t.Fatal(err)
	}
	err = c.Do(ctx, hs1.Name, http.MethodPut, "/_matrix/federation/v1/invite/"+esc(room)+"/"+esc(string(notInvite.EventID())), notInvite.Raw(), nil)
	if status, code, body := remoteErr(t, err); status != 400 || code != "M_INVALID_PARAM" {
		t.Errorf("a v1 join sent as an invite: %d %s %s", status, code, body)
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
