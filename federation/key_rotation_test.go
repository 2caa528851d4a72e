package federation_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// TestSigningKeyRotatedWhileRunning: hs1's key is rotated (as `parley
// keys rotate` does) while it runs and reloaded without a restart. hs2,
// which first talks to hs1 after the rotation, verifies hs1's requests
// and new events with the new key, and the events hs1 signed before with
// the former key, which hs1 announces in old_verify_keys.
func TestSigningKeyRotatedWhileRunning(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob := register(t, hs1, "alice"), register(t, hs2, "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	before := alice.send(t, room, "signed with the first key")
	oldID := hs1.App.SigningKey().ID()

	formerID, newID, err := app.RotateSigningKey(hs1.Config.DataDir, time.Now())
	if err != nil || formerID != oldID || newID == oldID {
		t.Fatalf("rotate: %s -> %s, %v (running with %s)", formerID, newID, err, oldID)
	}
	if changed, err := hs1.App.ReloadSigningKey(); err != nil || !changed {
		t.Fatalf("reload: %v, %v", changed, err)
	}
	if got := hs1.App.SigningKey().ID(); got != newID {
		t.Fatalf("running with %s after the reload, want %s", got, newID)
	}
	if changed, err := hs1.App.ReloadSigningKey(); err != nil || changed {
		t.Errorf("a second reload changed the key: %v, %v", changed, err)
	}

	// The key server: the new key, the former one as old.
	ctx := context.Background()
	c := hs2.App.FederationClient()
	var doc struct {
		VerifyKeys    map[string]any `json:"verify_keys"`
		OldVerifyKeys map[string]struct {
			ExpiredTS int64 `json:"expired_ts"`
		} `json:"old_verify_keys"`
	}
	if err := c.DoUnsigned(ctx, hs1.Name, http.MethodGet, "/_matrix/key/v2/server", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.VerifyKeys[newID]; !ok || len(doc.VerifyKeys) != 1 {
		t.Errorf("verify_keys %v, want only %s", doc.VerifyKeys, newID)
	}
	if old, ok := doc.OldVerifyKeys[oldID]; !ok || old.ExpiredTS == 0 {
		t.Errorf("old_verify_keys %v, want %s with its expired_ts", doc.OldVerifyKeys, oldID)
	}

	// bob joins through hs1 (requests both ways, the room's events signed
	// by the former key), then alice sends with the new key.
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(hs1.Name), map[string]any{})
	after := alice.send(t, room, "signed with the new key")
	sees(t, bob, room, after)

	v := roomversion.MustLookup("11")
	signedBy := func(eventID string) map[string]string {
		t.Helper()
		raw, err := c.GetEvent(ctx, hs1.Name, id.EventID(eventID))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Parse(v, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := event.Verify(ctx, ev, hs2.App.Keyring().VerifyKey); err != nil {
			t.Errorf("%s does not verify on hs2: %v", eventID, err)
		}
		return ev.Signatures()[hs1.Name]
	}
	if sigs := signedBy(after); sigs[newID] == "" || len(sigs) != 1 {
		t.Errorf("the new event's signatures %v, want one by %s", sigs, newID)
	}
	if sigs := signedBy(before); sigs[oldID] == "" {
		t.Errorf("the old event's signatures %v, want one by %s", sigs, oldID)
	}
}
