package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/users"
)

// CreateRegistrationToken implements users.RegistrationTokenStore.
func (a *Accounts) CreateRegistrationToken(ctx context.Context, t users.RegistrationToken) error {
	_, err := a.pool.Exec(ctx, `INSERT INTO registration_tokens (token, uses_allowed, expiry_ts, created_ts) VALUES ($1, $2, $3, $4)`,
		t.Token, t.UsesAllowed, ms(t.ExpiresAt), t.CreatedAt.UnixMilli())
	if isUniqueViolation(err) {
		return users.ErrExists
	}
	if err != nil {
		return fmt.Errorf("insert registration token: %w", err)
	}
	return nil
}

const selectRegistrationToken = `SELECT token, uses_allowed, pending, completed, expiry_ts, created_ts FROM registration_tokens`

func scanRegistrationToken(row pgx.Row) (users.RegistrationToken, error) {
	var t users.RegistrationToken
	var expires *int64
	var created int64
	err := row.Scan(&t.Token, &t.UsesAllowed, &t.Pending, &t.Completed, &expires, &created)
	t.ExpiresAt, t.CreatedAt = fromMS(expires), time.UnixMilli(created)
	return t, err
}

// RegistrationTokens implements users.RegistrationTokenStore.
func (a *Accounts) RegistrationTokens(ctx context.Context) ([]users.RegistrationToken, error) {
	rows, err := a.pool.Query(ctx, selectRegistrationToken+` ORDER BY created_ts, token`)
	if err != nil {
		return nil, fmt.Errorf("select registration tokens: %w", err)
	}
	defer rows.Close()
	var out []users.RegistrationToken
	for rows.Next() {
		t, err := scanRegistrationToken(rows)
		if err != nil {
			return nil, fmt.Errorf("scan registration token: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RegistrationToken implements users.RegistrationTokenStore.
func (a *Accounts) RegistrationToken(ctx context.Context, token string) (users.RegistrationToken, error) {
	t, err := scanRegistrationToken(a.pool.QueryRow(ctx, selectRegistrationToken+` WHERE token = $1`, token))
	if errors.Is(err, pgx.ErrNoRows) {
		return users.RegistrationToken{}, users.ErrNotFound
	}
	if err != nil {
		return users.RegistrationToken{}, fmt.Errorf("select registration token: %w", err)
	}
	return t, nil
}

// ReserveRegistrationToken implements users.RegistrationTokenStore: one
// statement, so concurrent registrations cannot overspend a token.
func (a *Accounts) ReserveRegistrationToken(ctx context.Context, token string, now time.Time) error {
	const q = `
UPDATE registration_tokens SET pending = pending + 1
WHERE token = $1
  AND (uses_allowed IS NULL OR pending + completed < uses_allowed)
  AND (expiry_ts IS NULL OR expiry_ts > $2)`
	tag, err := a.pool.Exec(ctx, q, token, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("reserve registration token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return users.ErrNotFound
	}
	return nil
}

// CompleteRegistrationToken implements users.RegistrationTokenStore.
func (a *Accounts) CompleteRegistrationToken(ctx context.Context, token string) error {
	_, err := a.pool.Exec(ctx, `UPDATE registration_tokens SET pending = GREATEST(pending - 1, 0), completed = completed + 1 WHERE token = $1`, token)
	if err != nil {
		return fmt.Errorf("complete registration token: %w", err)
	}
	return nil
}

// CreateNonce implements users.NonceStore; expired nonces are swept here.
func (a *Accounts) CreateNonce(ctx context.Context, nonce string, expiresAt time.Time) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM registration_nonces WHERE expires_ts < $1`, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("sweep nonces: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO registration_nonces (nonce, expires_ts) VALUES ($1, $2)`, nonce, expiresAt.UnixMilli()); err != nil {
			return fmt.Errorf("insert nonce: %w", err)
		}
		return nil
	})
}

// ConsumeNonce implements users.NonceStore.
func (a *Accounts) ConsumeNonce(ctx context.Context, nonce string, now time.Time) (bool, error) {
	var expires int64
	err := a.pool.QueryRow(ctx, `DELETE FROM registration_nonces WHERE nonce = $1 RETURNING expires_ts`, nonce).Scan(&expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("consume nonce: %w", err)
	}
	return expires > now.UnixMilli(), nil
}
