package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/keyring"
)

// TestRotateSigningKey: after a rotation and a restart the server signs
// with a new key and announces the former one in old_verify_keys, valid
// for what it signed before it expired.
func TestRotateSigningKey(t *testing.T) {
	s := apptest.Start(t)
	before := s.App.SigningKey()
	s.Stop(t)
	rotatedAt := time.Now()
	oldID, newID, err := app.RotateSigningKey(s.Config.DataDir, rotatedAt)
	if err != nil || oldID != before.ID() || newID == oldID {
		t.Fatalf("RotateSigningKey = %s, %s, %v", oldID, newID, err)
	}
	// A second rotation keeps both former keys.
	if _, _, err := app.RotateSigningKey(s.Config.DataDir, rotatedAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	current, old, err := app.SigningKeyIDs(s.Config.DataDir)
	if err != nil || len(old) != 2 || old[0].KeyID != oldID || old[1].KeyID != newID || current == newID {
		t.Fatalf("SigningKeyIDs = %s, %+v, %v", current, old, err)
	}
	s.Restart(t)
	if s.App.SigningKey().ID() != current {
		t.Errorf("restarted with %s, want %s", s.App.SigningKey().ID(), current)
	}
	keys, err := keyring.ParseKeyResponse(s.App.Keyring().KeyDocument(), s.Name, time.Now())
	if err != nil || len(keys) != 3 {
		t.Fatalf("key document: %+v, %v", keys, err)
	}
	ctx := context.Background()
	pub, err := s.App.Keyring().VerifyKey(ctx, s.Name, oldID, rotatedAt.UnixMilli()-1)
	if err != nil || !pub.Equal(before.Public()) {
		t.Errorf("former key before its expiry: %v", err)
	}
	if _, err := s.App.Keyring().VerifyKey(ctx, s.Name, oldID, time.Now().UnixMilli()); err == nil {
		t.Error("former key accepted for something made now")
	}
}

func TestBadOldSigningKeysFileRefused(t *testing.T) {
	s := apptest.Start(t)
	s.Stop(t)
	if err := os.WriteFile(filepath.Join(s.Config.DataDir, "old_signing.keys"), []byte("ed25519 v1 notbase64 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), s.Config, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		a.Close()
		t.Fatal("a server started with a corrupt old_signing.keys")
	}
}
