package interop

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

// TestFederatedRoomsForClients holds the server-side checks behind the
// federated scenarios, each a bug a real client ran into: a remote user in
// createRoom's invite list, and a new device's initial sync of a room
// joined over federation.
func TestFederatedRoomsForClients(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	_, aliceToken := hs1.Register(t, "alice", "pw")
	bob, bobToken := hs2.Register(t, "bob", "pw")
	t.Run("createRoom invites a remote user", func(t *testing.T) {
		testCreateRoomRemoteInvite(t, hs1, hs2, aliceToken, bob, bobToken)
	})
	// The invite arrives before hs2 holds the room's state: the new
	// device's initial sync must still show it all, m.room.encryption
	// included, or its client sends in the clear.
	t.Run("a new device's initial sync of a room joined over federation", func(t *testing.T) {
		testInitialSyncState(t, hs1, hs2, aliceToken, bob, bobToken)
	})
}

func testInitialSyncState(t *testing.T, hs1, hs2 *apptest.Server, aliceToken, bob, bobToken string) {
	created := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{
		"preset": "private_chat",
		"initial_state": []any{map[string]any{
			"type": "m.room.encryption", "state_key": "",
			"content": map[string]any{"algorithm": "m.megolm.v1.aes-sha2"},
		}},
	})
	apptest.MustStatus(t, created, http.StatusOK)
	room := url.PathEscape(created.String("room_id"))
	apptest.MustStatus(t, hs1.Do(t, http.MethodPost, "/_matrix/client/v3/rooms/"+room+"/invite", aliceToken, map[string]any{"user_id": bob}), http.StatusOK)
	// The invite reaches hs2 over federation; join once it has.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := hs2.Do(t, http.MethodPost, "/_matrix/client/v3/join/"+room, bobToken, map[string]any{})
		if res.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("join: %d %s", res.Status, res.Raw)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}

	login := hs2.Do(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "bob"}, "password": "pw",
	})
	apptest.MustStatus(t, login, http.StatusOK)
	sync := hs2.Do(t, http.MethodGet, "/_matrix/client/v3/sync", login.String("access_token"), nil)
	apptest.MustStatus(t, sync, http.StatusOK)
	var body struct {
		Rooms struct {
			Join map[string]struct {
				State    struct{ Events []json.RawMessage } `json:"state"`
				Timeline struct{ Events []json.RawMessage } `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(sync.Raw, &body); err != nil {
		t.Fatal(err)
	}
	joined, ok := body.Rooms.Join[created.String("room_id")]
	if !ok {
		t.Fatalf("the room is not in the new device's sync: %s", sync.Raw)
	}
	seen := map[string]bool{}
	for _, raw := range append(joined.State.Events, joined.Timeline.Events...) {
		var ev struct {
			Type     string  `json:"type"`
			StateKey *string `json:"state_key"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.StateKey != nil {
			seen[ev.Type] = true
		}
	}
	for _, want := range []string{"m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.encryption", "m.room.member"} {
		if !seen[want] {
			t.Errorf("%s missing from the state and timeline of the new device's initial sync (has %v)", want, seen)
		}
	}
}

// testCreateRoomRemoteInvite: the "invite" list of createRoom (how clients
// open a direct chat) reaches a user of another server, who sees the
// invite in /sync, flagged is_direct.
func testCreateRoomRemoteInvite(t *testing.T, hs1, hs2 *apptest.Server, aliceToken, bob, bobToken string) {
	created := hs1.Do(t, http.MethodPost, "/_matrix/client/v3/createRoom", aliceToken, map[string]any{
		"preset": "trusted_private_chat", "is_direct": true, "invite": []string{bob},
	})
	apptest.MustStatus(t, created, http.StatusOK)
	room := created.String("room_id")
	deadline := time.Now().Add(20 * time.Second)
	for {
		sync := hs2.Do(t, http.MethodGet, "/_matrix/client/v3/sync", bobToken, nil)
		apptest.MustStatus(t, sync, http.StatusOK)
		var body struct {
			Rooms struct {
				Invite map[string]struct {
					InviteState struct {
						Events []struct {
							Type     string         `json:"type"`
							StateKey string         `json:"state_key"`
							Content  map[string]any `json:"content"`
						} `json:"events"`
					} `json:"invite_state"`
				} `json:"invite"`
			} `json:"rooms"`
		}
		if err := json.Unmarshal(sync.Raw, &body); err != nil {
			t.Fatal(err)
		}
		if inv, ok := body.Rooms.Invite[room]; ok {
			for _, ev := range inv.InviteState.Events {
				if ev.Type == "m.room.member" && ev.StateKey == bob {
					if ev.Content["membership"] != "invite" || ev.Content["is_direct"] != true {
						t.Errorf("bob's member event in the invite: %v", ev.Content)
					}
					return
				}
			}
			t.Fatalf("the invite's stripped state lacks bob's member event: %s", sync.Raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no invite to %s in bob's sync on hs2: %s", room, sync.Raw)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
}
