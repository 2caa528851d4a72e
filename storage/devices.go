package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/users"
)

const upsertDevice = `
INSERT INTO devices (user_id, device_id, display_name, created_ts)
VALUES ($1, $2, NULLIF($3, ''), $4)
ON CONFLICT (user_id, device_id) DO NOTHING`

// createSession creates or reuses the device and replaces its tokens.
func createSession(ctx context.Context, tx pgx.Tx, s users.NewSession) error {
	now := s.CreatedAt.UnixMilli()
	if _, err := tx.Exec(ctx, upsertDevice, s.UserID, s.DeviceID, s.DisplayName, now); err != nil {
		return fmt.Errorf("upsert device %s/%s: %w", s.UserID, s.DeviceID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2`, s.UserID, s.DeviceID); err != nil {
		return fmt.Errorf("delete old access tokens: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2`, s.UserID, s.DeviceID); err != nil {
		return fmt.Errorf("delete old refresh tokens: %w", err)
	}
	var refreshID *int64
	if s.RefreshHash != nil {
		var rid int64
		err := tx.QueryRow(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts) VALUES ($1, $2, $3, $4) RETURNING id`,
			s.RefreshHash[:], s.UserID, s.DeviceID, now).Scan(&rid)
		if err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		refreshID = &rid
	}
	// A login's token has no predecessor to revoke on first use, so it is
	// stored as used: only refreshed tokens cost a write when first seen.
	_, err := tx.Exec(ctx, `INSERT INTO access_tokens (token_hash, user_id, device_id, refresh_id, expires_ts, used, created_ts) VALUES ($1, $2, $3, $4, $5, TRUE, $6)`,
		s.AccessHash[:], s.UserID, s.DeviceID, refreshID, ms(s.ExpiresAt), now)
	if err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	return nil
}

// CreateSession implements users.DeviceStore.
func (a *Accounts) CreateSession(ctx context.Context, s users.NewSession) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error { return createSession(ctx, tx, s) })
}

const selectDevice = `
SELECT user_id, device_id, COALESCE(display_name, ''), COALESCE(last_seen_ip, ''), last_seen_ts, created_ts
FROM devices`

func scanDevice(row pgx.Row) (users.Device, error) {
	var d users.Device
	var seen *int64
	var created int64
	err := row.Scan(&d.UserID, &d.DeviceID, &d.DisplayName, &d.LastSeenIP, &seen, &created)
	d.LastSeenAt = fromMS(seen)
	d.CreatedAt = time.UnixMilli(created)
	return d, err
}

// Devices implements users.DeviceStore.
func (a *Accounts) Devices(ctx context.Context, user id.UserID) ([]users.Device, error) {
	rows, err := a.pool.Query(ctx, selectDevice+` WHERE user_id = $1 ORDER BY device_id`, user)
	if err != nil {
		return nil, fmt.Errorf("select devices of %s: %w", user, err)
	}
	defer rows.Close()
	out := []users.Device{}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("scan device: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Device implements users.DeviceStore.
func (a *Accounts) Device(ctx context.Context, user id.UserID, device id.DeviceID) (users.Device, error) {
	d, err := scanDevice(a.pool.QueryRow(ctx, selectDevice+` WHERE user_id = $1 AND device_id = $2`, user, device))
	if errors.Is(err, pgx.ErrNoRows) {
		return users.Device{}, users.ErrNotFound
	}
	if err != nil {
		return users.Device{}, fmt.Errorf("select device %s/%s: %w", user, device, err)
	}
	return d, nil
}

// SetDeviceName implements users.DeviceStore.
func (a *Accounts) SetDeviceName(ctx context.Context, user id.UserID, device id.DeviceID, name string) error {
	tag, err := a.pool.Exec(ctx, `UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2`, user, device, name)
	if err != nil {
		return fmt.Errorf("rename device %s/%s: %w", user, device, err)
	}
	if tag.RowsAffected() == 0 {
		return users.ErrNotFound
	}
	return nil
}

// DeleteDevices implements users.DeviceStore; tokens go by ON DELETE CASCADE.
func (a *Accounts) DeleteDevices(ctx context.Context, user id.UserID, devices []id.DeviceID) error {
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = string(d)
	}
	if _, err := a.pool.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id = ANY($2)`, user, ids); err != nil {
		return fmt.Errorf("delete devices of %s: %w", user, err)
	}
	return nil
}

// DeleteDevicesExcept implements users.DeviceStore.
func (a *Accounts) DeleteDevicesExcept(ctx context.Context, user id.UserID, keep id.DeviceID) ([]id.DeviceID, error) {
	rows, err := a.pool.Query(ctx, `DELETE FROM devices WHERE user_id = $1 AND device_id <> $2 RETURNING device_id`, user, keep)
	if err != nil {
		return nil, fmt.Errorf("delete devices of %s: %w", user, err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[id.DeviceID])
	if err != nil {
		return nil, fmt.Errorf("delete devices of %s: %w", user, err)
	}
	return deleted, nil
}

const updateLastSeen = `
UPDATE devices AS d SET last_seen_ip = v.ip, last_seen_ts = v.ts
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS v(user_id, device_id, ip, ts)
WHERE d.user_id = v.user_id AND d.device_id = v.device_id
  AND (d.last_seen_ts IS NULL OR d.last_seen_ts < v.ts)`

// UpdateLastSeen implements users.DeviceStore with one statement for the
// whole batch.
func (a *Accounts) UpdateLastSeen(ctx context.Context, seen []users.LastSeen) error {
	if len(seen) == 0 {
		return nil
	}
	uids := make([]string, len(seen))
	dids := make([]string, len(seen))
	ips := make([]string, len(seen))
	ts := make([]int64, len(seen))
	for i, s := range seen {
		uids[i], dids[i], ips[i], ts[i] = string(s.UserID), string(s.DeviceID), s.IP, s.At.UnixMilli()
	}
	if _, err := a.pool.Exec(ctx, updateLastSeen, uids, dids, ips, ts); err != nil {
		return fmt.Errorf("update last seen: %w", err)
	}
	return nil
}
