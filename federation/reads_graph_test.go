package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
)

// TestRoomGraphReads: hs2, once bob has joined alice's room on hs1, reads
// the room's events, state, auth chains and history from hs1; a server
// with nobody in the room is refused.
func TestRoomGraphReads(t *testing.T) {
	servers := apptest.StartFederation(t, 3)
	hs1, hs2, hs3 := servers[0], servers[1], servers[2]
	ctx := context.Background()
	_, aliceTok := hs1.Register(t, "alice", password)
	_, bobTok := hs2.Register(t, "bob", password)
	res := hs1.Do(t, http.MethodPost, v3+"/createRoom", aliceTok, map[string]any{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room := id.RoomID(res.String("room_id"))
	var sent []id.EventID
	for i := range 5 {
		res := hs1.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(string(room))+"/send/m.room.message/t"+string(rune('a'+i)), aliceTok,
			map[string]string{"msgtype": "m.text", "body": "before bob"})
		apptest.MustStatus(t, res, http.StatusOK)
		sent = append(sent, id.EventID(res.String("event_id")))
	}
	c2, c3 := clientAs(t, hs2), clientAs(t, hs3)
	last := sent[len(sent)-1]

	// Nobody of hs2 in the room yet.
	if _, err := c2.GetStateIDs(ctx, hs1.Config.ServerName, room, last); fedclient.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("state_ids for a server not in the room: %v", err)
	}
	res = hs2.Do(t, http.MethodPost, v3+"/join/"+url.PathEscape(string(room))+"?server_name="+string(hs1.Config.ServerName), bobTok, map[string]any{})
	apptest.MustStatus(t, res, http.StatusOK)

	ids, err := c2.GetStateIDs(ctx, hs1.Config.ServerName, room, last)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids.PDUIDs) == 0 || len(ids.AuthChainIDs) == 0 {
		t.Fatalf("state_ids %+v", ids)
	}
	st, err := c2.GetState(ctx, hs1.Config.ServerName, room, last)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.PDUs) != len(ids.PDUIDs) || len(st.AuthChain) != len(ids.AuthChainIDs) {
		t.Fatalf("state: %d pdus, %d auth; state_ids: %d, %d", len(st.PDUs), len(st.AuthChain), len(ids.PDUIDs), len(ids.AuthChainIDs))
	}
	pdu, err := c2.GetEvent(ctx, hs1.Config.ServerName, last)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		RoomID  id.RoomID       `json:"room_id"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(pdu, &ev); err != nil || ev.RoomID != room || !bytes.Contains(ev.Content, []byte("before bob")) {
		t.Fatalf("event %s", pdu)
	}
	chain, err := c2.EventAuth(ctx, hs1.Config.ServerName, room, last)
	if err != nil || len(chain) == 0 {
		t.Fatalf("event_auth: %d events, %v", len(chain), err)
	}
	txn, err := c2.Backfill(ctx, hs1.Config.ServerName, room, []id.EventID{last}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(txn.PDUs) != 3 || txn.Origin != hs1.Config.ServerName {
		t.Fatalf("backfill: %d pdus from %s", len(txn.PDUs), txn.Origin)
	}
	missing, err := c2.GetMissingEvents(ctx, hs1.Config.ServerName, room, fedclient.MissingEventsRequest{
		EarliestEvents: sent[:1], LatestEvents: []id.EventID{last}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 3 {
		t.Fatalf("missing events between the first and the last message: %d, want 3", len(missing))
	}
	ts, err := c2.TimestampToEvent(ctx, hs1.Config.ServerName, room, time.Now().Add(time.Hour).UnixMilli(), 'b')
	if err != nil {
		t.Fatal(err)
	}
	if ts.EventID == "" || ts.OriginServerTS == 0 {
		t.Fatalf("timestamp_to_event %+v", ts)
	}

	// hs3 has nobody in the room: every read refused.
	for name, call := range map[string]func() error{
		"event": func() error { _, err := c3.GetEvent(ctx, hs1.Config.ServerName, last); return err },
		"state": func() error { _, err := c3.GetState(ctx, hs1.Config.ServerName, room, last); return err },
		"backfill": func() error {
			_, err := c3.Backfill(ctx, hs1.Config.ServerName, room, []id.EventID{last}, 3)
			return err
		},
		"event_auth": func() error { _, err := c3.EventAuth(ctx, hs1.Config.ServerName, room, last); return err },
		"missing": func() error {
			_, err := c3.GetMissingEvents(ctx, hs1.Config.ServerName, room, fedclient.MissingEventsRequest{LatestEvents: []id.EventID{last}})
			return err
		},
	} {
		if err := call(); fedclient.StatusOf(err) != http.StatusForbidden || !fedclient.IsErrcode(err, "M_FORBIDDEN") {
			t.Errorf("%s for a server not in the room: %v", name, err)
		}
	}
	// Unknown events and bad parameters.
	if _, err := c2.GetStateIDs(ctx, hs1.Config.ServerName, room, "$unknown"); fedclient.StatusOf(err) != http.StatusNotFound {
		t.Errorf("state_ids at an unknown event: %v", err)
	}
	var raw json.RawMessage
	err = c2.Do(ctx, hs1.Config.ServerName, http.MethodGet, "/_matrix/federation/v1/backfill/"+url.PathEscape(string(room))+"?limit=3", nil, &raw)
	if !fedclient.IsErrcode(err, "M_MISSING_PARAM") {
		t.Errorf("backfill without v: %v", err)
	}
	err = c2.Do(ctx, hs1.Config.ServerName, http.MethodGet, "/_matrix/federation/v1/timestamp_to_event/"+url.PathEscape(string(room))+"?ts=1&dir=x", nil, &raw)
	if !fedclient.IsErrcode(err, "M_INVALID_PARAM") {
		t.Errorf("timestamp_to_event with dir=x: %v", err)
	}

	// The room's server ACL shuts hs2 out of every read, bob's join
	// notwithstanding.
	res = hs1.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(string(room))+"/state/m.room.server_acl/", aliceTok,
		map[string]any{"allow": []string{"*"}, "deny": []string{string(hs2.Config.ServerName)}})
	apptest.MustStatus(t, res, http.StatusOK)
	if _, err := c2.GetStateIDs(ctx, hs1.Config.ServerName, room, last); !fedclient.IsErrcode(err, "M_FORBIDDEN") {
		t.Errorf("state_ids for a server the ACL denies: %v", err)
	}
	if _, err := c2.GetEvent(ctx, hs1.Config.ServerName, last); !fedclient.IsErrcode(err, "M_FORBIDDEN") {
		t.Errorf("event for a server the ACL denies: %v", err)
	}
}

// TestHistoryVisibilityForServers: in a room whose history is visible to
// joined members only, hs2 gets what was sent before bob joined redacted,
// and what came after in full.
func TestHistoryVisibilityForServers(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	_, aliceTok := hs1.Register(t, "alice", password)
	_, bobTok := hs2.Register(t, "bob", password)
	res := hs1.Do(t, http.MethodPost, v3+"/createRoom", aliceTok, map[string]any{"preset": "public_chat",
		"initial_state": []any{map[string]any{"type": "m.room.history_visibility", "state_key": "",
			"content": map[string]string{"history_visibility": "joined"}}}})
	apptest.MustStatus(t, res, http.StatusOK)
	room := id.RoomID(res.String("room_id"))
	send := func(txn, body string) id.EventID {
		t.Helper()
		res := hs1.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(string(room))+"/send/m.room.message/"+txn, aliceTok,
			map[string]string{"msgtype": "m.text", "body": body})
		apptest.MustStatus(t, res, http.StatusOK)
		return id.EventID(res.String("event_id"))
	}
	secret := send("t1", "the secret before bob")
	res = hs2.Do(t, http.MethodPost, v3+"/join/"+url.PathEscape(string(room))+"?server_name="+string(hs1.Config.ServerName), bobTok, map[string]any{})
	apptest.MustStatus(t, res, http.StatusOK)
	open := send("t2", "hello bob")

	c2 := clientAs(t, hs2)
	for _, tc := range []struct {
		event   id.EventID
		body    string
		visible bool
	}{
		{secret, "the secret before bob", false},
		{open, "hello bob", true},
	} {
		pdu, err := c2.GetEvent(ctx, hs1.Config.ServerName, tc.event)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(pdu, []byte(tc.body)); got != tc.visible {
			t.Errorf("%s served with its content: %v, want %v (%s)", tc.event, got, tc.visible, pdu)
		}
	}
	txn, err := c2.Backfill(ctx, hs1.Config.ServerName, room, []id.EventID{open}, 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, pdu := range txn.PDUs {
		if bytes.Contains(pdu, []byte("the secret before bob")) {
			t.Fatalf("backfill served the secret: %s", pdu)
		}
	}
}
