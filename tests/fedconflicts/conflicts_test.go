package fedconflicts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

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

// waitFor polls cond until it holds or 20 seconds pass: delivery between
// servers is asynchronous.
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

// state is the room's current state on a's server, as sorted
// "type|state_key|event_id" entries.
func (a account) state(t *testing.T, room string) []string {
	t.Helper()
	res := a.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state", nil)
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

func (a account) stateEvent(t *testing.T, room, typ, key string) apptest.Response {
	t.Helper()
	return a.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/state/"+esc(typ)+"/"+esc(key), nil)
}

// sameState waits until every account's server shows the same current
// state of room, and returns it.
func sameState(t *testing.T, room string, as ...account) []string {
	t.Helper()
	var want []string
	waitFor(t, "the same state on every server", func() (bool, string) {
		want = as[0].state(t, room)
		for _, a := range as[1:] {
			if got := a.state(t, room); !slices.Equal(got, want) {
				return false, fmt.Sprintf("%s: %v\n%s: %v", as[0].srv.Name, want, a.srv.Name, got)
			}
		}
		return true, ""
	})
	return want
}

// joinedRoom is a public room of alice on hs1 joined by bob and carol of
// hs2, bob a room admin too when bobAdmin, with every server agreeing on
// its state.
func joinedRoom(t *testing.T, bobAdmin bool) (room string, alice, bob, carol account) {
	t.Helper()
	srvs := apptest.StartFederation(t, 2)
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
	sameState(t, room, alice, bob, carol)
	return room, alice, bob, carol
}

func TestConcurrentPowerLevelChangesResolveTheSameEverywhere(t *testing.T) {
	room, alice, bob, carol := joinedRoom(t, true)
	// Both admins change the power levels at the same moment, each on
	// their own server: two branches of the graph.
	var wg sync.WaitGroup
	for _, c := range []struct {
		who      account
		defaults int
	}{{alice, 10}, {bob, 20}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.who.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.power_levels/", map[string]any{
				"users": map[string]any{alice.id: 100, bob.id: 100}, "users_default": c.defaults,
			})
		}()
	}
	wg.Wait()
	state := sameState(t, room, alice, bob, carol)
	// One more event from each server closes the fork; still the same.
	alice.must(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/a1", esc(room)), map[string]any{"msgtype": "m.text", "body": "after"})
	bob.must(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/b1", esc(room)), map[string]any{"msgtype": "m.text", "body": "after"})
	if after := sameState(t, room, alice, bob, carol); !slices.Equal(after, state) {
		t.Fatalf("the state moved after the fork closed:\n%v\n%v", state, after)
	}
	pl := alice.stateEvent(t, room, "m.room.power_levels", "")
	if d, _ := pl.Body["users_default"].(float64); d != 10 && d != 20 {
		t.Fatalf("users_default %v, want one of the two changes", pl.Body["users_default"])
	}
}

func TestABanRacingAMessageEndsTheSameEverywhere(t *testing.T) {
	room, alice, bob, carol := joinedRoom(t, false)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/ban", map[string]any{"user_id": bob.id})
	}()
	go func() {
		defer wg.Done()
		// Refused by hs2 when the ban has already arrived; either is fine.
		bob.do(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/race", esc(room)), map[string]any{"msgtype": "m.text", "body": "racing"})
	}()
	wg.Wait()
	sameState(t, room, alice, carol)
	for _, viewer := range []account{alice, carol} {
		waitFor(t, "bob banned on "+string(viewer.srv.Name), func() (bool, string) {
			res := viewer.stateEvent(t, room, "m.room.member", bob.id)
			return res.String("membership") == "ban", string(res.Raw)
		})
	}
	// The room goes on: a message of carol reaches alice.
	eid := carol.must(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/c1", esc(room)), map[string]any{"msgtype": "m.text", "body": "still here"}).String("event_id")
	waitFor(t, "carol's message on hs1", func() (bool, string) {
		res := alice.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(eid), nil)
		return res.Status == http.StatusOK, string(res.Raw)
	})
}
