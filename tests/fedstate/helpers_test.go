package fedstate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
)

type account struct {
	srv   *apptest.Server
	id    string
	token string
}

func newAccount(t *testing.T, srv *apptest.Server, localpart string) account {
	t.Helper()
	uid, tok := srv.Register(t, localpart, "correct horse battery")
	return account{srv: srv, id: uid, token: tok}
}

func (a account) do(t *testing.T, method, path string, body any) apptest.Response {
	t.Helper()
	return a.srv.Do(t, method, path, a.token, body)
}

func (a account) must(t *testing.T, method, path string, body any) apptest.Response {
	t.Helper()
	res := a.do(t, method, path, body)
	apptest.MustStatus(t, res, http.StatusOK)
	return res
}

func esc(s string) string { return url.PathEscape(s) }

// waitFor polls cond until it holds or 30 seconds pass: delivery between
// servers is asynchronous.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 30s; last: %s", what, last)
}

// state is the room's current state on a's server (GET /state), as
// "type|state_key" → event id.
func (a account) state(t *testing.T, room string) (map[string]string, error) {
	t.Helper()
	res := a.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state", nil)
	if res.Status != http.StatusOK {
		return nil, fmt.Errorf("GET /state: %d %s", res.Status, res.Raw)
	}
	var evs []clientEvent
	if err := json.Unmarshal(res.Raw, &evs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ev := range evs {
		out[ev.key()] = ev.EventID
	}
	return out, nil
}

type clientEvent struct {
	EventID  string          `json:"event_id"`
	Type     string          `json:"type"`
	StateKey *string         `json:"state_key"`
	Sender   string          `json:"sender"`
	Content  json.RawMessage `json:"content"`
}

func (ev clientEvent) key() string { return ev.Type + "|" + *ev.StateKey }

// syncer is a client following one room through /sync as the spec tells
// clients to: with state_after, its state is state_after's events only;
// without, the state section then the timeline's state events.
type syncer struct {
	a          account
	room       string
	stateAfter bool
	since      string
	state      map[string]string
	timeline   []clientEvent // every timeline event seen, in order
}

func newSyncer(t *testing.T, a account, room string, stateAfter bool) *syncer {
	t.Helper()
	s := &syncer{a: a, room: room, stateAfter: stateAfter, state: map[string]string{}}
	s.sync(t)
	return s
}

type roomSection struct {
	State      *struct{ Events []clientEvent } `json:"state"`
	StateAfter *struct{ Events []clientEvent } `json:"state_after"`
	Timeline   struct {
		Events  []clientEvent `json:"events"`
		Limited bool          `json:"limited"`
	} `json:"timeline"`
}

// sync runs one /sync (no waiting) and applies it.
func (s *syncer) sync(t *testing.T) {
	t.Helper()
	q := url.Values{"timeout": {"0"}}
	if s.since != "" {
		q.Set("since", s.since)
	}
	if s.stateAfter {
		q.Set("use_state_after", "true")
	}
	res := s.a.must(t, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), nil)
	var body struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]roomSection `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(res.Raw, &body); err != nil {
		t.Fatal(err)
	}
	s.since = body.NextBatch
	jr, ok := body.Rooms.Join[s.room]
	if !ok {
		return
	}
	if s.stateAfter {
		if jr.StateAfter == nil || jr.State != nil {
			t.Fatalf("use_state_after: state_after %v, state %v: want state_after only", jr.StateAfter != nil, jr.State != nil)
		}
		for _, ev := range jr.StateAfter.Events {
			s.state[ev.key()] = ev.EventID
		}
	} else {
		if jr.StateAfter != nil || jr.State == nil {
			t.Fatalf("no use_state_after: state_after %v, state %v: want state only", jr.StateAfter != nil, jr.State != nil)
		}
		for _, ev := range jr.State.Events {
			s.state[ev.key()] = ev.EventID
		}
	}
	for _, ev := range jr.Timeline.Events {
		s.timeline = append(s.timeline, ev)
		if ev.StateKey != nil && !s.stateAfter {
			s.state[ev.key()] = ev.EventID
		}
	}
}

func diff(a, b map[string]string) string {
	var out []string
	for k := range a {
		if a[k] != b[k] {
			out = append(out, fmt.Sprintf("%s: %s vs %s", k, a[k], b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: missing vs %s", k, b[k]))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// converge waits until every server shows the same state of room and
// every syncer, syncing again, ends with it.
func converge(t *testing.T, room string, viewers []account, syncers []*syncer) map[string]string {
	t.Helper()
	var want map[string]string
	waitFor(t, "the same state on every server and in every client", func() (bool, string) {
		var err error
		if want, err = viewers[0].state(t, room); err != nil {
			return false, err.Error()
		}
		for _, v := range viewers[1:] {
			got, err := v.state(t, room)
			if err != nil {
				return false, err.Error()
			}
			if !maps.Equal(got, want) {
				return false, fmt.Sprintf("%s vs %s: %s", viewers[0].srv.Name, v.srv.Name, diff(want, got))
			}
		}
		for _, s := range syncers {
			s.sync(t)
			if !maps.Equal(s.state, want) {
				return false, fmt.Sprintf("%s's client (state_after %v) vs its server: %s", s.a.id, s.stateAfter, diff(s.state, want))
			}
		}
		return true, ""
	})
	return want
}

// joinedRoom is a public room of alice on hs1 joined by bob and carol of
// hs2, bob a room admin too when bobAdmin, with both servers agreeing.
func joinedRoom(t *testing.T, srvs []*apptest.Server, bobAdmin bool) (room string, alice, bob, carol account) {
	t.Helper()
	alice = newAccount(t, srvs[0], "alice")
	bob = newAccount(t, srvs[1], "bob")
	carol = newAccount(t, srvs[1], "carol")
	room = alice.must(t, http.MethodPost, "/_matrix/client/v3/createRoom", map[string]any{"preset": "public_chat"}).String("room_id")
	for _, u := range []account{bob, carol} {
		u.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name=hs1.test", map[string]any{})
	}
	bobLevel := 0
	if bobAdmin {
		bobLevel = 100
	}
	alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.power_levels/", map[string]any{
		"users": map[string]any{alice.id: 100, bob.id: bobLevel}, "users_default": 0,
	})
	converge(t, room, []account{alice, bob, carol}, nil)
	return room, alice, bob, carol
}

// forked reports whether room's graph forked on srv (sql/0016's
// room_forks): the premise of a test that makes it fork.
func forked(t *testing.T, srv *apptest.Server, room string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM room_forks f JOIN rooms r ON r.room_nid = f.room_nid WHERE r.room_id = $1`, room).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// checkStateReads checks that the other state endpoints on a's server
// agree with GET /state: each event by type and key, /members and
// /joined_members.
func checkStateReads(t *testing.T, a account, room string) {
	t.Helper()
	base := "/_matrix/client/v3/rooms/" + esc(room)
	var evs []clientEvent
	if err := json.Unmarshal(a.must(t, http.MethodGet, base+"/state", nil).Raw, &evs); err != nil {
		t.Fatal(err)
	}
	members, joined := map[string]string{}, map[string]bool{}
	for _, ev := range evs {
		if ev.Type == "m.room.member" {
			members[*ev.StateKey] = ev.EventID
			var c struct {
				Membership string `json:"membership"`
			}
			_ = json.Unmarshal(ev.Content, &c)
			if c.Membership == "join" {
				joined[*ev.StateKey] = true
			}
		}
		res := a.do(t, http.MethodGet, base+"/state/"+esc(ev.Type)+"/"+esc(*ev.StateKey), nil)
		if res.Status != http.StatusOK {
			t.Errorf("%s: GET /state/%s/%s: %d %s", a.srv.Name, ev.Type, *ev.StateKey, res.Status, res.Raw)
			continue
		}
		var got, want any
		_ = json.Unmarshal(res.Raw, &got)
		_ = json.Unmarshal(ev.Content, &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: GET /state/%s/%s = %s, GET /state has %s", a.srv.Name, ev.Type, *ev.StateKey, res.Raw, ev.Content)
		}
	}
	var chunk struct {
		Chunk []clientEvent `json:"chunk"`
	}
	if err := json.Unmarshal(a.must(t, http.MethodGet, base+"/members", nil).Raw, &chunk); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ev := range chunk.Chunk {
		got[*ev.StateKey] = ev.EventID
	}
	if d := diff(members, got); d != "" {
		t.Errorf("%s: /members differs from /state: %s", a.srv.Name, d)
	}
	var jm struct {
		Joined map[string]any `json:"joined"`
	}
	if err := json.Unmarshal(a.must(t, http.MethodGet, base+"/joined_members", nil).Raw, &jm); err != nil {
		t.Fatal(err)
	}
	gotJoined := map[string]bool{}
	for u := range jm.Joined {
		gotJoined[u] = true
	}
	if !maps.Equal(gotJoined, joined) {
		t.Errorf("%s: /joined_members %v, /state's joined members %v", a.srv.Name, gotJoined, joined)
	}
}
