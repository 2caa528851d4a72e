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

const selectAccessToken = `
SELECT t.user_id, t.device_id, u.is_guest, u.is_admin, t.expires_ts, t.used
FROM access_tokens t JOIN users u ON u.user_id = t.user_id
WHERE t.token_hash = $1 AND NOT u.deactivated`

// AccessToken implements users.TokenStore.
func (a *Accounts) AccessToken(ctx context.Context, h users.TokenHash) (users.AccessTokenInfo, error) {
	var info users.AccessTokenInfo
	var expires *int64
	err := a.pool.QueryRow(ctx, selectAccessToken, h[:]).Scan(&info.UserID, &info.DeviceID, &info.IsGuest, &info.IsAdmin, &expires, &info.Used)
	if errors.Is(err, pgx.ErrNoRows) {
		return users.AccessTokenInfo{}, users.ErrNotFound
	}
	if err != nil {
		return users.AccessTokenInfo{}, fmt.Errorf("select access token: %w", err)
	}
	info.ExpiresAt = fromMS(expires)
	return info, nil
}

// MarkAccessTokenUsed implements users.TokenStore.
func (a *Accounts) MarkAccessTokenUsed(ctx context.Context, h users.TokenHash) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		var refreshID *int64
		err := tx.QueryRow(ctx, `UPDATE access_tokens SET used = TRUE WHERE token_hash = $1 AND NOT used RETURNING refresh_id`, h[:]).Scan(&refreshID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // already used, or gone
		}
		if err != nil {
			return fmt.Errorf("mark access token used: %w", err)
		}
		if refreshID == nil {
			return nil
		}
		return revokePredecessor(ctx, tx, *refreshID)
	})
}

// revokePredecessor deletes the refresh token that refresh token rid
// replaced, and every other token issued from that predecessor by a repeated
// refresh (spec: "Refreshing access tokens": the old refresh token remains
// valid until the new access token or refresh token is used).
func revokePredecessor(ctx context.Context, tx pgx.Tx, rid int64) error {
	var prev *int64
	if err := tx.QueryRow(ctx, `SELECT prev_id FROM refresh_tokens WHERE id = $1`, rid).Scan(&prev); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("select refresh predecessor: %w", err)
	}
	if prev == nil {
		return nil
	}
	const siblings = `SELECT id FROM refresh_tokens WHERE id = $1 OR (prev_id = $1 AND id <> $2)`
	if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE refresh_id IN (`+siblings+`)`, *prev, rid); err != nil {
		return fmt.Errorf("delete superseded access tokens: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE id IN (`+siblings+`)`, *prev, rid); err != nil {
		return fmt.Errorf("delete superseded refresh tokens: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET prev_id = NULL WHERE id = $1`, rid); err != nil {
		return fmt.Errorf("clear refresh predecessor: %w", err)
	}
	return nil
}

// RotateRefreshToken implements users.TokenStore.
func (a *Accounts) RotateRefreshToken(ctx context.Context, old, access, refresh users.TokenHash, expiresAt, now time.Time) (id.UserID, id.DeviceID, error) {
	var user id.UserID
	var device id.DeviceID
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		var rid int64
		err := tx.QueryRow(ctx, `SELECT id, user_id, device_id FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, old[:]).Scan(&rid, &user, &device)
		if errors.Is(err, pgx.ErrNoRows) {
			return users.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("select refresh token: %w", err)
		}
		if err := revokePredecessor(ctx, tx, rid); err != nil {
			return err
		}
		// The access token issued with the old refresh token is replaced now.
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE refresh_id = $1`, rid); err != nil {
			return fmt.Errorf("delete refreshed access token: %w", err)
		}
		var nid int64
		err = tx.QueryRow(ctx, `INSERT INTO refresh_tokens (token_hash, user_id, device_id, prev_id, created_ts) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			refresh[:], user, device, rid, now.UnixMilli()).Scan(&nid)
		if err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO access_tokens (token_hash, user_id, device_id, refresh_id, expires_ts, created_ts) VALUES ($1, $2, $3, $4, $5, $6)`,
			access[:], user, device, nid, ms(expiresAt), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert access token: %w", err)
		}
		return nil
	})
	return user, device, err
}

// CreateLoginToken implements users.TokenStore.
func (a *Accounts) CreateLoginToken(ctx context.Context, h users.TokenHash, user id.UserID, expiresAt time.Time) error {
	if _, err := a.pool.Exec(ctx, `INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES ($1, $2, $3)`, h[:], user, expiresAt.UnixMilli()); err != nil {
		return fmt.Errorf("insert login token: %w", err)
	}
	return nil
}

// ConsumeLoginToken implements users.TokenStore. Expired tokens are deleted
// on the way.
func (a *Accounts) ConsumeLoginToken(ctx context.Context, h users.TokenHash, now time.Time) (id.UserID, error) {
	var user id.UserID
	var expires int64
	err := a.pool.QueryRow(ctx, `DELETE FROM login_tokens WHERE token_hash = $1 RETURNING user_id, expires_ts`, h[:]).Scan(&user, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", users.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("consume login token: %w", err)
	}
	if expires <= now.UnixMilli() {
		return "", users.ErrNotFound
	}
	return user, nil
}
