package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// TestPresenceFollowsSharedRooms: the presence stream asks once per sync
// which of the users whose presence changed share a joined room with the
// syncing user (syncer.RoomSharers). A user who left the only shared room
// is no longer sent, one who joins one is, and a room the sync's filter
// leaves out does not count as shared.
func TestPresenceFollowsSharedRooms(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	carol, carolTok := s.Register(t, "carol", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	other := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	roomPost(t, s, carolTok, other, "join", nil)
	setPresence := func(user, token, status string) {
		t.Helper()
		apptest.MustStatus(t, s.Do(t, http.MethodPut, presencePath(user), token, obj{"presence": "online", "status_msg": status}), http.StatusOK)
	}
	setPresence(bob, bobTok, "one")
	setPresence(carol, carolTok, "one")

	got, since := presenceOf(t, s, aliceTok, "")
	if got[bob]["status_msg"] != "one" || got[carol]["status_msg"] != "one" {
		t.Fatalf("alice shares a room with bob and carol, sees %v", got)
	}
	// A filter that leaves out carol's room leaves out carol.
	onlyRoom := `{"room":{"rooms":["` + room + `"]}}`
	got, _ = presenceOf(t, s, aliceTok, "", "filter", onlyRoom)
	if _, ok := got[carol]; ok || got[bob]["status_msg"] != "one" {
		t.Errorf("with rooms [%s] alice sees %v, want bob and not carol", room, got)
	}

	// Bob leaves the only room he shared with alice: his next change is
	// not hers to see. Carol's change, in the same range, is.
	roomPost(t, s, bobTok, room, "leave", obj{})
	setPresence(bob, bobTok, "two")
	setPresence(carol, carolTok, "two")
	got, since = presenceOf(t, s, aliceTok, since)
	if _, ok := got[bob]; ok {
		t.Errorf("bob left the shared room, alice still sees his presence: %v", got[bob])
	}
	if got[carol]["status_msg"] != "two" {
		t.Errorf("carol's change missing: %v", got)
	}

	// He joins again: shared once more.
	roomPost(t, s, bobTok, room, "join", nil)
	setPresence(bob, bobTok, "three")
	got, _ = presenceOf(t, s, aliceTok, since)
	if got[bob]["status_msg"] != "three" {
		t.Errorf("bob rejoined, alice sees %v", got)
	}
}
