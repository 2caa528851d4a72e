package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

const (
	insertBackup = `
INSERT INTO room_key_backups (user_id, version, algorithm, auth_data)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM room_key_backups WHERE user_id = $1
RETURNING version`
	selectLatestBackup = `
SELECT version, algorithm, auth_data, etag FROM room_key_backups
WHERE user_id = $1 AND NOT deleted ORDER BY version DESC LIMIT 1`
	selectBackup = `
SELECT version, algorithm, auth_data, etag FROM room_key_backups
WHERE user_id = $1 AND version = $2 AND NOT deleted`
	countBackupKeys = `SELECT count(*) FROM room_key_backup_keys WHERE user_id = $1 AND version = $2`
	updateBackup    = `UPDATE room_key_backups SET auth_data = $3 WHERE user_id = $1 AND version = $2 AND NOT deleted`
	deleteBackup    = `UPDATE room_key_backups SET deleted = TRUE WHERE user_id = $1 AND version = $2 AND NOT deleted`
	deleteBackupAll = `DELETE FROM room_key_backup_keys WHERE user_id = $1 AND version = $2`
	// upsertBackupKey keeps the better key of a session (spec "Server-side
	// key backups": a verified one, else the lower first_message_index,
	// else the lower forwarded_count).
	upsertBackupKey = `
INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, session_data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
    first_message_index = EXCLUDED.first_message_index, forwarded_count = EXCLUDED.forwarded_count,
    is_verified = EXCLUDED.is_verified, session_data = EXCLUDED.session_data
WHERE (EXCLUDED.is_verified AND NOT room_key_backup_keys.is_verified)
   OR (EXCLUDED.is_verified = room_key_backup_keys.is_verified AND
       (EXCLUDED.first_message_index < room_key_backup_keys.first_message_index OR
        (EXCLUDED.first_message_index = room_key_backup_keys.first_message_index AND
         EXCLUDED.forwarded_count < room_key_backup_keys.forwarded_count)))`
	bumpBackupETag = `UPDATE room_key_backups SET etag = etag + 1 WHERE user_id = $1 AND version = $2`
	// The filters: '' matches every room or session.
	selectBackupKeys = `
SELECT room_id, session_id, first_message_index, forwarded_count, is_verified, session_data
FROM room_key_backup_keys WHERE user_id = $1 AND version = $2 AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)
ORDER BY room_id, session_id`
	deleteBackupKeys = `
DELETE FROM room_key_backup_keys WHERE user_id = $1 AND version = $2 AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)`
)

// CreateBackup implements keys.BackupStore.
func (s *Keys) CreateBackup(ctx context.Context, user id.UserID, algorithm string, authData json.RawMessage) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, insertBackup, user, algorithm, []byte(authData)).Scan(&v); err != nil {
		return 0, fmt.Errorf("create key backup of %s: %w", user, err)
	}
	return v, nil
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func readBackup(ctx context.Context, q rowQuerier, user id.UserID, version int64) (keys.BackupVersion, error) {
	var b keys.BackupVersion
	var raw []byte
	var row pgx.Row
	if version == 0 {
		row = q.QueryRow(ctx, selectLatestBackup, user)
	} else {
		row = q.QueryRow(ctx, selectBackup, user, version)
	}
	err := row.Scan(&b.Version, &b.Algorithm, &raw, &b.ETag)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, keys.ErrNotFound
	}
	if err != nil {
		return b, fmt.Errorf("key backup of %s: %w", user, err)
	}
	b.AuthData = raw
	if err := q.QueryRow(ctx, countBackupKeys, user, b.Version).Scan(&b.Count); err != nil {
		return b, fmt.Errorf("key backup of %s: %w", user, err)
	}
	return b, nil
}

// Backup implements keys.BackupStore.
func (s *Keys) Backup(ctx context.Context, user id.UserID, version int64) (keys.BackupVersion, error) {
	return readBackup(ctx, s.pool, user, version)
}

// UpdateBackup implements keys.BackupStore.
func (s *Keys) UpdateBackup(ctx context.Context, user id.UserID, version int64, authData json.RawMessage) error {
	tag, err := s.pool.Exec(ctx, updateBackup, user, version, []byte(authData))
	if err != nil {
		return fmt.Errorf("update key backup of %s: %w", user, err)
	}
	if tag.RowsAffected() == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// DeleteBackup implements keys.BackupStore: the version is kept as
// deleted so that its number is never given out again.
func (s *Keys) DeleteBackup(ctx context.Context, user id.UserID, version int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteBackup, user, version)
		if err != nil {
			return fmt.Errorf("delete key backup of %s: %w", user, err)
		}
		if tag.RowsAffected() == 0 {
			return keys.ErrNotFound
		}
		_, err = tx.Exec(ctx, deleteBackupAll, user, version)
		return err
	})
}

// PutBackupKeys implements keys.BackupStore.
func (s *Keys) PutBackupKeys(ctx context.Context, user id.UserID, version int64, ks []keys.BackupKey) (keys.BackupVersion, error) {
	var b keys.BackupVersion
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		changed := false
		for _, k := range ks {
			tag, err := tx.Exec(ctx, upsertBackupKey, user, version, k.Room, k.SessionID, k.FirstMessageIndex,
				k.ForwardedCount, k.IsVerified, []byte(k.SessionData))
			if err != nil {
				return err
			}
			changed = changed || tag.RowsAffected() > 0
		}
		if changed {
			if _, err := tx.Exec(ctx, bumpBackupETag, user, version); err != nil {
				return err
			}
		}
		var err error
		b, err = readBackup(ctx, tx, user, version)
		return err
	})
	if errors.Is(err, keys.ErrNotFound) {
		return b, err
	}
	if err != nil {
		return b, fmt.Errorf("put backup keys of %s: %w", user, err)
	}
	return b, nil
}

// BackupKeys implements keys.BackupStore.
func (s *Keys) BackupKeys(ctx context.Context, user id.UserID, version int64, room id.RoomID, session string) ([]keys.BackupKey, error) {
	rows, err := s.pool.Query(ctx, selectBackupKeys, user, version, room, session)
	if err != nil {
		return nil, fmt.Errorf("backup keys of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.BackupKey, error) {
		var k keys.BackupKey
		var raw []byte
		err := row.Scan(&k.Room, &k.SessionID, &k.FirstMessageIndex, &k.ForwardedCount, &k.IsVerified, &raw)
		k.SessionData = raw
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("backup keys of %s: %w", user, err)
	}
	return out, nil
}

// DeleteBackupKeys implements keys.BackupStore.
func (s *Keys) DeleteBackupKeys(ctx context.Context, user id.UserID, version int64, room id.RoomID, session string) (keys.BackupVersion, error) {
	var b keys.BackupVersion
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteBackupKeys, user, version, room, session)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			if _, err := tx.Exec(ctx, bumpBackupETag, user, version); err != nil {
				return err
			}
		}
		b, err = readBackup(ctx, tx, user, version)
		return err
	})
	if err != nil && !errors.Is(err, keys.ErrNotFound) {
		return b, fmt.Errorf("delete backup keys of %s: %w", user, err)
	}
	return b, err
}
