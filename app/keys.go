package app

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
	"github.com/parleyhq/parley/users"
)

// newKeys builds the end-to-end encryption service on its Postgres store:
// the users service runs the user-interactive auth of cross-signing
// uploads, the notifier wakes the syncs of recipients and trackers. It
// returns the service's two sync streams (to-device, device lists).
func newKeys(cfg *config.Config, pool *pgxpool.Pool, notifier *syncer.Notifier, u *users.Service, logger *slog.Logger) (*keys.Service, []syncer.StreamSource) {
	svc := keys.New(keys.Config{ServerName: cfg.ServerName}, storage.NewKeys(pool), notifier, u, logger)
	return svc, []syncer.StreamSource{keys.ToDeviceSource{Keys: svc}, keys.DeviceListSource{Keys: svc}}
}

// Keys is the end-to-end encryption service (federation hands it the
// to-device and device list EDUs and serves its user key queries).
func (a *App) Keys() *keys.Service { return a.keys }
