package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

// The cache of remote users' device lists (sql/0014, docs/e2ee.md).
const (
	selectRemoteDeviceLists = `
SELECT user_id, stream_id, list FROM remote_device_lists WHERE user_id = ANY($1)`
	// upsertRemoteDeviceList keeps a stored list of a later stream_id: a
	// resync that raced an applied update must not take it back.
	upsertRemoteDeviceList = `
INSERT INTO remote_device_lists (user_id, local_server, stream_id, list, ts) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id) DO UPDATE SET local_server = EXCLUDED.local_server, stream_id = EXCLUDED.stream_id, list = EXCLUDED.list, ts = EXCLUDED.ts
WHERE remote_device_lists.stream_id <= EXCLUDED.stream_id`
	deleteRemoteDeviceList = `DELETE FROM remote_device_lists WHERE user_id = $1`
	// selectSharingWithLocal: those of $1 joined to a room a user of
	// server $2 is joined to (the room_memberships_server index).
	selectSharingWithLocal = `
SELECT DISTINCT b.user_id FROM room_memberships b
WHERE b.user_id = ANY($1) AND b.membership = 'join' AND EXISTS (
    SELECT 1 FROM room_memberships a WHERE a.room_nid = b.room_nid AND a.membership = 'join'
      AND substr(a.user_id, strpos(a.user_id, ':') + 1) = $2)`
)

// RemoteDeviceLists implements keys.RemoteDeviceStore.
func (s *Keys) RemoteDeviceLists(ctx context.Context, users []id.UserID) (map[id.UserID]*keys.RemoteDeviceList, error) {
	out := map[id.UserID]*keys.RemoteDeviceList{}
	if len(users) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, selectRemoteDeviceLists, userStrings(users))
	if err != nil {
		return nil, fmt.Errorf("remote device lists: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l := &keys.RemoteDeviceList{}
		var raw []byte
		if err := rows.Scan(&l.User, &l.StreamID, &raw); err != nil {
			return nil, fmt.Errorf("remote device lists: %w", err)
		}
		if err := json.Unmarshal(raw, l); err != nil {
			return nil, fmt.Errorf("remote device list of %s: %w", l.User, err)
		}
		if l.Devices == nil {
			l.Devices = map[id.DeviceID]keys.RemoteDevice{}
		}
		out[l.User] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("remote device lists: %w", err)
	}
	return out, nil
}

// PutRemoteDeviceList implements keys.RemoteDeviceStore.
func (s *Keys) PutRemoteDeviceList(ctx context.Context, local id.ServerName, l *keys.RemoteDeviceList) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, upsertRemoteDeviceList, l.User, string(local), l.StreamID, raw, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("put remote device list of %s: %w", l.User, err)
	}
	return nil
}

// DeleteRemoteDeviceList implements keys.RemoteDeviceStore.
func (s *Keys) DeleteRemoteDeviceList(ctx context.Context, user id.UserID) error {
	if _, err := s.pool.Exec(ctx, deleteRemoteDeviceList, user); err != nil {
		return fmt.Errorf("delete remote device list of %s: %w", user, err)
	}
	return nil
}

// SharingWithLocal implements keys.RemoteDeviceStore.
func (s *Keys) SharingWithLocal(ctx context.Context, users []id.UserID, local id.ServerName) ([]id.UserID, error) {
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, selectSharingWithLocal, userStrings(users), string(local))
	if err != nil {
		return nil, fmt.Errorf("users sharing a room with %s: %w", local, err)
	}
	defer rows.Close()
	var out []id.UserID
	for rows.Next() {
		var u id.UserID
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Resyncs of remote device lists (sql/0018, keys/resync.go).
const (
	deleteRemoteListForResync = `DELETE FROM remote_device_lists WHERE user_id = $1`
	upsertResync              = `
INSERT INTO remote_device_list_resyncs (user_id, gen, failures, retry_at_ts) VALUES ($1, 1, 0, 0)
ON CONFLICT (user_id) DO UPDATE SET gen = remote_device_list_resyncs.gen + 1, retry_at_ts = 0`
	bumpResync = `
UPDATE remote_device_list_resyncs SET gen = gen + 1, retry_at_ts = 0 WHERE user_id = $1`
	selectDueResyncs = `
SELECT user_id, gen, failures FROM remote_device_list_resyncs WHERE retry_at_ts <= $1 ORDER BY retry_at_ts, user_id LIMIT $2`
	selectNextResync   = `SELECT min(retry_at_ts) FROM remote_device_list_resyncs WHERE retry_at_ts > $1`
	updateResyncFailed = `
UPDATE remote_device_list_resyncs SET failures = $2, retry_at_ts = $3 WHERE user_id = $1`
	deleteResync         = `DELETE FROM remote_device_list_resyncs WHERE user_id = $1 AND gen = $2`
	selectPendingResyncs = `SELECT user_id FROM remote_device_list_resyncs WHERE user_id = ANY($1)`
)

// MarkResync implements keys.ResyncStore.
func (s *Keys) MarkResync(ctx context.Context, user id.UserID) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, deleteRemoteListForResync, user); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, upsertResync, user)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark device list of %s for a resync: %w", user, err)
	}
	return nil
}

// RemarkResync implements keys.ResyncStore.
func (s *Keys) RemarkResync(ctx context.Context, user id.UserID) (bool, error) {
	tag, err := s.pool.Exec(ctx, bumpResync, user)
	if err != nil {
		return false, fmt.Errorf("mark device list of %s for a resync: %w", user, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DueResyncs implements keys.ResyncStore.
func (s *Keys) DueResyncs(ctx context.Context, now time.Time, limit int) ([]keys.Resync, time.Time, error) {
	rows, err := s.pool.Query(ctx, selectDueResyncs, now.UnixMilli(), limit)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due resyncs: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.Resync, error) {
		var r keys.Resync
		err := row.Scan(&r.User, &r.Gen, &r.Failures)
		return r, err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("due resyncs: %w", err)
	}
	var next *int64
	if err := s.pool.QueryRow(ctx, selectNextResync, now.UnixMilli()).Scan(&next); err != nil {
		return nil, time.Time{}, fmt.Errorf("due resyncs: %w", err)
	}
	var at time.Time
	if next != nil {
		at = time.UnixMilli(*next)
	}
	return due, at, nil
}

// ResyncFailed implements keys.ResyncStore.
func (s *Keys) ResyncFailed(ctx context.Context, user id.UserID, failures int, retryAt time.Time) error {
	if _, err := s.pool.Exec(ctx, updateResyncFailed, user, failures, retryAt.UnixMilli()); err != nil {
		return fmt.Errorf("resync of %s failed: %w", user, err)
	}
	return nil
}

// ResyncDone implements keys.ResyncStore.
func (s *Keys) ResyncDone(ctx context.Context, user id.UserID, gen int64) error {
	if _, err := s.pool.Exec(ctx, deleteResync, user, gen); err != nil {
		return fmt.Errorf("resync of %s done: %w", user, err)
	}
	return nil
}

// ResyncsPending implements keys.ResyncStore.
func (s *Keys) ResyncsPending(ctx context.Context, users []id.UserID) ([]id.UserID, error) {
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, selectPendingResyncs, userStrings(users))
	if err != nil {
		return nil, fmt.Errorf("pending resyncs: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, fmt.Errorf("pending resyncs: %w", err)
	}
	return out, nil
}
