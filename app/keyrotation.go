package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/rooms/signing"
)

// A signing key rotated while the server runs (`parley keys rotate`
// rewrites data_dir/signing.key and appends the former key to
// old_signing.keys) is picked up without a restart: the server reads the
// key file again every signingKeyPoll, and at once on ReloadSigningKey.
// The key every component holds is a signing.Live's, so the rooms
// service, the federation client and the key server all switch to the
// new key together; the former one is announced in old_verify_keys from
// then on. Several nodes sharing a data_dir each switch within one poll.

// signingKeyPoll is how often the key file is read again.
const signingKeyPoll = 10 * time.Second

// liveSigningKey makes a.signingKey a signing.Live's key, so that a
// rotation reaches every holder of it. Called before any is built.
func (a *App) liveSigningKey() {
	if a.signingKey.Live() == nil {
		a.signingKey = signing.NewLive(a.signingKey).Key()
	}
}

// ReloadSigningKey reads data_dir/signing.key and old_signing.keys again
// and, when the key changed, switches to it: the former keys first (the
// key server announces the one that signed until now as old), then the
// key. It reports whether the key changed.
func (a *App) ReloadSigningKey() (bool, error) {
	live := a.signingKey.Live()
	if live == nil {
		return false, fmt.Errorf("reload signing key: the key is not a live one")
	}
	data, err := os.ReadFile(filepath.Join(a.cfg.DataDir, signingKeyFile))
	if err != nil {
		return false, fmt.Errorf("reload signing key: %w", err)
	}
	next, err := parseSigningKeyFile(data)
	if err != nil {
		return false, err
	}
	if next.ID() == a.signingKey.ID() && next.PublicBase64() == a.signingKey.PublicBase64() {
		return false, nil
	}
	old, err := loadOldSigningKeys(a.cfg.DataDir)
	if err != nil {
		return false, err
	}
	if a.keyring != nil {
		a.keyring.SetOldKeys(old)
	}
	former := a.signingKey.ID()
	live.Set(next)
	a.logger.Info("signing key rotated", slog.String("key_id", next.ID()), slog.String("former_key_id", former))
	return true, nil
}

// watchSigningKey reloads the signing key every signingKeyPoll until ctx
// ends; an unreadable key file is logged and the current key kept.
func (a *App) watchSigningKey(ctx context.Context) {
	t := time.NewTicker(signingKeyPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.ReloadSigningKey(); err != nil {
			a.logger.Error("signing key not reloaded", slog.String("error", err.Error()))
		}
	}
}
