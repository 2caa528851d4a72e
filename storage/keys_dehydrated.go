package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

const (
	selectDehydrated = `SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = $1`
	// Deleting the device row takes the dehydrated_devices row, the keys
	// and the pending messages with it (ON DELETE CASCADE).
	deleteDehydratedDevice = `
DELETE FROM devices WHERE (user_id, device_id) IN (SELECT user_id, device_id FROM dehydrated_devices WHERE user_id = $1)
RETURNING device_id`
	insertDehydratedDeviceRow = `
INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, NULLIF($3, ''), $4)
ON CONFLICT DO NOTHING`
	insertDehydrated = `INSERT INTO dehydrated_devices (user_id, device_id, device_data) VALUES ($1, $2, $3)`
)

// PutDehydratedDevice implements keys.DehydratedStore.
func (s *Keys) PutDehydratedDevice(ctx context.Context, user id.UserID, device id.DeviceID, displayName string, data json.RawMessage) (id.DeviceID, error) {
	var old id.DeviceID
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		old = ""
		err := tx.QueryRow(ctx, deleteDehydratedDevice, user).Scan(&old)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		tag, err := tx.Exec(ctx, insertDehydratedDeviceRow, user, device, displayName, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return keys.ErrDeviceExists
		}
		_, err = tx.Exec(ctx, insertDehydrated, user, device, []byte(data))
		return err
	})
	if errors.Is(err, keys.ErrDeviceExists) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("put dehydrated device of %s: %w", user, err)
	}
	if old != "" {
		s.counts.drop(user, old)
	}
	s.counts.drop(user, device)
	return old, nil
}

// DehydratedDevice implements keys.DehydratedStore.
func (s *Keys) DehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, json.RawMessage, error) {
	var d id.DeviceID
	var raw []byte
	err := s.pool.QueryRow(ctx, selectDehydrated, user).Scan(&d, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, keys.ErrNotFound
	}
	if err != nil {
		return "", nil, fmt.Errorf("dehydrated device of %s: %w", user, err)
	}
	return d, raw, nil
}

// DeleteDehydratedDevice implements keys.DehydratedStore.
func (s *Keys) DeleteDehydratedDevice(ctx context.Context, user id.UserID) (id.DeviceID, error) {
	var d id.DeviceID
	err := s.pool.QueryRow(ctx, deleteDehydratedDevice, user).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", keys.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("delete dehydrated device of %s: %w", user, err)
	}
	s.counts.drop(user, d)
	return d, nil
}
