package app

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
	"github.com/parleyhq/parley/users"
)

// newKeys builds the end-to-end encryption service on its Postgres store:
// the users service runs the user-interactive auth of cross-signing
// uploads, the notifier wakes the syncs of recipients and trackers, and
// deletions (from withDeviceDeletions) now reach it. It returns the
// service's two sync streams (to-device, device lists).
func newKeys(cfg *config.Config, pool *pgxpool.Pool, notifier *syncer.Notifier, u *users.Service,
	deletions *deviceDeletions, logger *slog.Logger) (*keys.Service, []syncer.StreamSource) {
	store := storage.NewKeys(pool)
	svc := keys.New(keys.Config{ServerName: cfg.ServerName, ToDeviceRetention: cfg.E2EE.ToDeviceRetention}, store, notifier, u, logger)
	deletions.keys, deletions.store = svc, store
	return svc, []syncer.StreamSource{keys.ToDeviceSource{Keys: svc}, keys.DeviceListSource{Keys: svc}}
}

// Keys is the end-to-end encryption service (federation hands it the
// to-device and device list EDUs and serves its user key queries).
func (a *App) Keys() *keys.Service { return a.keys }

// deviceDeletions wraps the users service's device and account stores so
// that every deletion of devices — logout, device deletion, a password
// change, deactivation — is followed by keys.DevicesDeleted: the keys
// went with the devices, and the users tracking them must hear of it now.
// A renamed device is a device list change too (keys.DeviceRenamed).
// keys is set once the keys service exists, before anything is served;
// store with it, whose cached key counts of a deleted (or created) device
// go (storage.Keys.ForgetDevices).
type deviceDeletions struct {
	keys  *keys.Service
	store *storage.Keys
}

type deletingDevices struct {
	users.DeviceStore
	d *deviceDeletions
}

type deletingAccounts struct {
	users.AccountStore
	d *deviceDeletions
}

// withDeviceDeletions returns st with the deleting stores wrapped.
func withDeviceDeletions(st users.Stores) (users.Stores, *deviceDeletions) {
	d := &deviceDeletions{}
	st.Devices = deletingDevices{DeviceStore: st.Devices, d: d}
	st.Accounts = deletingAccounts{AccountStore: st.Accounts, d: d}
	return st, d
}

func (d *deviceDeletions) deleted(ctx context.Context, user id.UserID, devices []id.DeviceID) {
	if d.store != nil {
		d.store.ForgetDevices(user, devices)
	}
	if d.keys != nil {
		d.keys.DevicesDeleted(ctx, user, devices)
	}
}

// CreateSession forgets what the keys store kept of a device of that id:
// one deleted on another node and created again here has no keys.
func (s deletingDevices) CreateSession(ctx context.Context, ns users.NewSession) error {
	if err := s.DeviceStore.CreateSession(ctx, ns); err != nil {
		return err
	}
	if s.d.store != nil {
		s.d.store.ForgetDevices(ns.UserID, []id.DeviceID{ns.DeviceID})
	}
	return nil
}

func (s deletingDevices) DeleteDevices(ctx context.Context, user id.UserID, devices []id.DeviceID) error {
	if err := s.DeviceStore.DeleteDevices(ctx, user, devices); err != nil {
		return err
	}
	s.d.deleted(ctx, user, devices)
	return nil
}

func (s deletingDevices) DeleteDevicesExcept(ctx context.Context, user id.UserID, keep id.DeviceID) ([]id.DeviceID, error) {
	deleted, err := s.DeviceStore.DeleteDevicesExcept(ctx, user, keep)
	if err != nil {
		return nil, err
	}
	if len(deleted) > 0 {
		s.d.deleted(ctx, user, deleted)
	}
	return deleted, nil
}

func (s deletingDevices) SetDeviceName(ctx context.Context, user id.UserID, device id.DeviceID, name string) error {
	if err := s.DeviceStore.SetDeviceName(ctx, user, device, name); err != nil {
		return err
	}
	if s.d.keys != nil {
		s.d.keys.DeviceRenamed(ctx, user, device)
	}
	return nil
}

func (s deletingAccounts) DeactivateAccount(ctx context.Context, user id.UserID) error {
	if err := s.AccountStore.DeactivateAccount(ctx, user); err != nil {
		return err
	}
	s.d.deleted(ctx, user, nil)
	return nil
}

// SyncWaiters is the number of syncs waiting for a change now: tests wait
// for a long-poll to be parked before they cause the change that must
// wake it.
func (a *App) SyncWaiters() int { return a.notifier.Waiting() }
