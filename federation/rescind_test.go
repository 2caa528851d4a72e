package federation_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// syncSections says whether room is in u's /sync invite and leave
// sections (an incremental sync from since, a full one when "") and
// returns next_batch.
func syncSections(t *testing.T, u user, room, since string) (invited, left bool, next, raw string) {
	t.Helper()
	path := "/_matrix/client/v3/sync?timeout=0"
	if since != "" {
		path += "&since=" + url.QueryEscape(since)
	}
	res := u.do(t, http.MethodGet, path, nil)
	rooms, _ := res.Body["rooms"].(map[string]any)
	invites, _ := rooms["invite"].(map[string]any)
	leaves, _ := rooms["leave"].(map[string]any)
	_, invited = invites[room]
	_, left = leaves[room]
	return invited, left, res.String("next_batch"), string(res.Raw)
}

// TestRescindedInviteReachesInvitee: hs2 is not in the room; alice
// invites hs2's users and then takes the invite back (a kick of the
// invitee), bans one, and one rejects: each change reaches hs2, whose
// users see the room under leave and no longer under invite.
func TestRescindedInviteReachesInvitee(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice := register(t, hs1, "alice")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "private_chat"})
	// invite returns the sync token at which u sees the invite.
	invite := func(t *testing.T, u user) string {
		t.Helper()
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": u.id})
		var since string
		eventually(t, u.id+" sees the invite", func() (bool, string) {
			invited, _, next, raw := syncSections(t, u, room, "")
			since = next
			return invited, raw
		})
		return since
	}
	// seesLeft: the room comes under leave in a sync since the invite,
	// and a full sync no longer shows the invite.
	seesLeft := func(t *testing.T, u user, since string) {
		t.Helper()
		eventually(t, u.id+" sees the room left", func() (bool, string) {
			invited, left, _, raw := syncSections(t, u, room, since)
			return left && !invited, raw
		})
		if invited, _, _, raw := syncSections(t, u, room, ""); invited {
			t.Errorf("a full sync still shows the invite: %s", raw)
		}
	}

	t.Run("rescinded", func(t *testing.T) {
		bob := register(t, hs2, "bob")
		since := invite(t, bob)
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/kick", map[string]any{"user_id": bob.id, "reason": "wrong person"})
		seesLeft(t, bob, since)
		// bob cannot join on the strength of the rescinded invite.
		res := bob.do(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room), map[string]any{})
		if res.Status != http.StatusForbidden {
			t.Errorf("join after the invite was taken back: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("banned", func(t *testing.T) {
		carol := register(t, hs2, "carol")
		since := invite(t, carol)
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/ban", map[string]any{"user_id": carol.id})
		seesLeft(t, carol, since)
	})
	t.Run("rejected", func(t *testing.T) {
		dave := register(t, hs2, "dave")
		since := invite(t, dave)
		dave.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/leave", map[string]any{"reason": "no thanks"})
		if m := membershipOf(t, alice, room, dave.id); m != "leave" {
			t.Errorf("hs1 shows dave's membership %q after the rejection", m)
		}
		seesLeft(t, dave, since)
	})
	// A second rescinded invite of the same server reaches it too (its
	// one-event windows do not stand in each other's way).
	t.Run("rescinded again", func(t *testing.T) {
		erin := register(t, hs2, "erin")
		since := invite(t, erin)
		alice.must(t, http.MethodPost, "/_matrix/client/v3/rooms/"+esc(room)+"/kick", map[string]any{"user_id": erin.id})
		seesLeft(t, erin, since)
	})
}
