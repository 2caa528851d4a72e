package fede2ee

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// sharedRoom registers alice on home and bob on away, has alice create a
// public room that bob joins through home, and returns once alice's sync
// shows bob's join (so each server knows the other shares the room).
func sharedRoom(t *testing.T, home, away *apptest.Server) (alice, bob *device, room string) {
	t.Helper()
	alice = newDevice(t, home, "alice")
	bob = newDevice(t, away, "bob")
	res := home.Do(t, http.MethodPost, v3+"/createRoom", alice.token, obj{"preset": "public_chat"})
	apptest.MustStatus(t, res, http.StatusOK)
	room = res.String("room_id")
	apptest.MustStatus(t, away.Do(t, http.MethodPost, v3+"/join/"+url.PathEscape(room)+"?server_name="+string(home.Config.ServerName),
		bob.token, obj{}), http.StatusOK)
	var since string
	alice.follow(t, &since, "bob's join", func(b map[string]any) bool {
		for _, e := range asSlice(field(b, "rooms", "join", room, "timeline", "events")) {
			if field(e, "state_key") == bob.user {
				return true
			}
		}
		return false
	})
	return alice, bob, room
}

// queryKeys is POST /keys/query on srv by token for all of user's devices.
func queryKeys(t *testing.T, srv *apptest.Server, token, user string) apptest.Response {
	t.Helper()
	q := srv.Do(t, http.MethodPost, v3+"/keys/query", token, obj{"device_keys": obj{user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	return q
}
