package fedmisbehave

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

func esc(s string) string { return url.PathEscape(s) }

func must(t *testing.T, srv *apptest.Server, token, method, path string, body any) apptest.Response {
	t.Helper()
	res := srv.Do(t, method, path, token, body)
	apptest.MustStatus(t, res, http.StatusOK)
	return res
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 20s; last: %s", what, last)
}

// remote is hs2 crafting PDUs by hand with its real signing key.
type remote struct {
	t      *testing.T
	hs1    *apptest.Server
	token1 string // alice's, to read hs1's view of the room
	key    signing.Key
	client *fedclient.Client
	ts     int64
}

// stateID is the event id of a state event as hs1 sees it.
func (r *remote) stateID(room, typ, key string) id.EventID {
	r.t.Helper()
	res := r.hs1.Do(r.t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state", r.token1, nil)
	var evs []map[string]any
	if err := json.Unmarshal(res.Raw, &evs); err != nil {
		r.t.Fatalf("state: %s", res.Raw)
	}
	for _, ev := range evs {
		if ev["type"] == typ && ev["state_key"] == key {
			return id.EventID(ev["event_id"].(string))
		}
	}
	return ""
}

// latest is the id of the room's latest event on hs1.
func (r *remote) latest(room string) id.EventID {
	r.t.Helper()
	res := must(r.t, r.hs1, r.token1, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?dir=b&limit=1", nil)
	chunk := res.Body["chunk"].([]any)
	return id.EventID(chunk[0].(map[string]any)["event_id"].(string))
}

// build signs an event of sender with key (hs2's own, or a forger's).
func (r *remote) build(key signing.Key, room string, sender id.UserID, typ string, stateKey *string, content string) *event.Event {
	r.t.Helper()
	v, _ := roomversion.Lookup("11")
	var auth []id.EventID
	for _, k := range [][2]string{{"m.room.create", ""}, {"m.room.power_levels", ""}, {"m.room.member", string(sender)}} {
		if eid := r.stateID(room, k[0], k[1]); eid != "" {
			auth = append(auth, eid)
		}
	}
	r.ts++
	ev, err := event.Build(v, event.Proto{Sender: sender, Type: typ, StateKey: stateKey, Content: json.RawMessage(content),
		RoomID: id.RoomID(room), PrevEvents: event.Refs(r.latest(room)), AuthEvents: event.Refs(auth...), Depth: 1000,
		OriginServerTS: r.ts}, "hs2.test", key)
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

// send PUTs a transaction to hs1 and returns the status and the answer.
func (r *remote) send(txnID string, pdus []json.RawMessage, edus int) (int, map[string]map[string]string) {
	r.t.Helper()
	body := map[string]any{"origin": "hs2.test", "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus}
	if edus > 0 {
		list := make([]map[string]any, edus)
		for i := range list {
			list[i] = map[string]any{"edu_type": "m.typing", "content": map[string]any{}}
		}
		body["edus"] = list
	}
	var resp struct {
		PDUs map[string]map[string]string `json:"pdus"`
	}
	err := r.client.Do(context.Background(), "hs1.test", http.MethodPut, "/_matrix/federation/v1/send/"+txnID, body, &resp)
	if err != nil {
		return fedclient.StatusOf(err), nil
	}
	return http.StatusOK, resp.PDUs
}

func TestAMisbehavingRemoteReachesNoClient(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, aliceTok := hs1.Register(t, "alice", "correct horse battery")
	bob, bobTok := hs2.Register(t, "bob", "correct horse battery")
	room := must(t, hs1, aliceTok, http.MethodPost, "/_matrix/client/v3/createRoom",
		map[string]any{"preset": "public_chat", "room_version": "11", "name": "Original"}).String("room_id")
	must(t, hs2, bobTok, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name=hs1.test", map[string]any{})
	private := must(t, hs1, aliceTok, http.MethodPost, "/_matrix/client/v3/createRoom",
		map[string]any{"preset": "private_chat", "room_version": "11"}).String("room_id")
	r := &remote{t: t, hs1: hs1, token1: aliceTok, key: hs2.App.SigningKey(), client: hs2.App.FederationClient(), ts: time.Now().UnixMilli()}
	waitFor(t, "bob's join on hs1", func() (bool, string) {
		return r.stateID(room, "m.room.member", bob) != "", ""
	})
	bobID := id.UserID(bob)
	forger, err := signing.Generate(r.key.ID())
	if err != nil {
		t.Fatal(err)
	}
	forged := r.build(forger, room, bobID, "m.room.message", nil, `{"msgtype":"m.text","body":"forged"}`)
	notAllowed := r.build(r.key, room, bobID, "m.room.name", strPtr(""), `{"name":"Taken over"}`)
	notInRoom := r.build(r.key, private, bobID, "m.room.message", nil, `{"msgtype":"m.text","body":"let me in"}`)
	good := r.build(r.key, room, bobID, "m.room.message", nil, `{"msgtype":"m.text","body":"original text"}`)
	// The content changes after signing: the hash no longer matches, the
	// signature (over the redacted event) still does.
	tampered, err := event.Parse(good.Version(), canonicaljson.Encode(good.JSON().With("content",
		canonicaljson.ObjectValue().With("msgtype", canonicaljson.StringValue("m.text")).With("body", canonicaljson.StringValue("tampered")))))
	if err != nil {
		t.Fatal(err)
	}

	status, answer := r.send("bad1", []json.RawMessage{forged.Raw(), notAllowed.Raw(), notInRoom.Raw(), tampered.Raw()}, 0)
	if status != http.StatusOK {
		t.Fatalf("/send answered %d", status)
	}
	for _, c := range []struct {
		name string
		ev   *event.Event
		want string
	}{
		{"forged signature", forged, "dropped"},
		{"not allowed by the power levels", notAllowed, "rejected"},
		{"a room the remote is not in", notInRoom, "not joined"},
	} {
		if got := answer[string(c.ev.EventID())]["error"]; !strings.Contains(got, c.want) {
			t.Errorf("%s: answer %q, want an error with %q", c.name, got, c.want)
		}
	}
	if got, ok := answer[string(tampered.EventID())]; !ok || got["error"] != "" {
		t.Errorf("the tampered event: answer %v (present %v), want accepted (redacted)", got, ok)
	}
	// What alice sees: the tampered event redacted, none of the others.
	res := must(t, hs1, aliceTok, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(string(tampered.EventID())), nil)
	if content, _ := res.Body["content"].(map[string]any); len(content) != 0 {
		t.Errorf("the tampered event shows content %v, want none (redacted)", content)
	}
	for _, ev := range []*event.Event{forged, notAllowed} {
		res := hs1.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(string(ev.EventID())), aliceTok, nil)
		if res.Status != http.StatusNotFound {
			t.Errorf("event %s: %d %s, want 404", ev.EventID(), res.Status, res.Raw)
		}
	}
	if name := must(t, hs1, aliceTok, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.name/", nil).String("name"); name != "Original" {
		t.Errorf("room name %q, want Original", name)
	}
	sync := must(t, hs1, aliceTok, http.MethodGet, "/_matrix/client/v3/sync", nil)
	for _, ev := range []*event.Event{forged, notAllowed, notInRoom} {
		if strings.Contains(string(sync.Raw), string(ev.EventID())) {
			t.Errorf("/sync shows %s", ev.EventID())
		}
	}

	// Transactions over the limits are refused whole.
	pdus := make([]json.RawMessage, 51)
	for i := range pdus {
		pdus[i] = good.Raw()
	}
	if status, _ := r.send("big1", pdus, 0); status != http.StatusBadRequest {
		t.Errorf("51 PDUs: %d, want 400", status)
	}
	if status, _ := r.send("big2", nil, 101); status != http.StatusBadRequest {
		t.Errorf("101 EDUs: %d, want 400", status)
	}
	// A retried transaction id gets the first answer again.
	status, again := r.send("bad1", []json.RawMessage{good.Raw()}, 0)
	if status != http.StatusOK || fmt.Sprint(again) != fmt.Sprint(answer) {
		t.Errorf("retry of bad1: %d %v, want the first answer %v", status, again, answer)
	}
	_ = alice
}

func strPtr(s string) *string { return &s }
