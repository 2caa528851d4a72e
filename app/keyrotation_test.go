package app_test

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/keyring"
)

// TestRunningServerPicksUpARotatedKey: `parley keys rotate` on the data
// directory of a running server; the server switches to the new key by
// itself within its poll (no restart, no explicit reload), and its key
// document announces the former key as old.
func TestRunningServerPicksUpARotatedKey(t *testing.T) {
	s := apptest.Start(t)
	oldID, newID, err := app.RotateSigningKey(s.Config.DataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(25 * time.Second)
	for s.App.SigningKey().ID() != newID {
		if time.Now().After(deadline) {
			t.Fatalf("still signing with %s, want %s", s.App.SigningKey().ID(), newID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	keys, err := keyring.ParseKeyResponse(s.App.Keyring().KeyDocument(), s.Name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, k := range keys {
		got[k.KeyID] = true
	}
	if !got[oldID] || !got[newID] || len(keys) != 2 {
		t.Errorf("key document holds %v, want %s and %s", got, oldID, newID)
	}
}
