package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/users"
)

// Accounts implements the stores of package users (accounts, devices,
// tokens, UIA sessions, registration tokens, nonces) on Postgres.
type Accounts struct {
	pool *pgxpool.Pool
}

// NewAccounts returns the accounts stores on pool.
func NewAccounts(pool *pgxpool.Pool) *Accounts { return &Accounts{pool: pool} }

// UsersStores returns every store package users needs, backed by a.
func (a *Accounts) UsersStores() users.Stores {
	return users.Stores{Accounts: a, Devices: a, Tokens: a, UIA: a, RegistrationTokens: a, Nonces: a}
}

var (
	_ users.AccountStore           = (*Accounts)(nil)
	_ users.DeviceStore            = (*Accounts)(nil)
	_ users.TokenStore             = (*Accounts)(nil)
	_ users.UIAStore               = (*Accounts)(nil)
	_ users.RegistrationTokenStore = (*Accounts)(nil)
	_ users.NonceStore             = (*Accounts)(nil)
)

// ms converts a time to the milliseconds the schema stores; the zero time
// becomes NULL.
func ms(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// fromMS is the inverse of ms.
func fromMS(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return time.UnixMilli(*v)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

const insertAccount = `
INSERT INTO users (user_id, password_hash, is_guest, is_admin, created_ts)
VALUES ($1, NULLIF($2, ''), $3, $4, $5)`

// insertDefaultProfile stores a new account's initial display name.
const insertDefaultProfile = `INSERT INTO profiles (user_id, fields) VALUES ($1, jsonb_build_object('displayname', $2::text))`

// CreateAccount implements users.AccountStore.
func (a *Accounts) CreateAccount(ctx context.Context, acc users.Account, s *users.NewSession) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertAccount, acc.UserID, acc.PasswordHash, acc.IsGuest, acc.IsAdmin, acc.CreatedAt.UnixMilli())
		if isUniqueViolation(err) {
			return users.ErrExists
		}
		if err != nil {
			return fmt.Errorf("insert account %s: %w", acc.UserID, err)
		}
		if acc.DisplayName != "" {
			if _, err := tx.Exec(ctx, insertDefaultProfile, acc.UserID, acc.DisplayName); err != nil {
				return fmt.Errorf("insert profile %s: %w", acc.UserID, err)
			}
		}
		if s != nil {
			return createSession(ctx, tx, *s)
		}
		return nil
	})
}

const selectAccount = `
SELECT user_id, COALESCE(password_hash, ''), is_guest, is_admin, deactivated, created_ts
FROM users`

func scanAccount(row pgx.Row) (users.Account, error) {
	var acc users.Account
	var created int64
	err := row.Scan(&acc.UserID, &acc.PasswordHash, &acc.IsGuest, &acc.IsAdmin, &acc.Deactivated, &created)
	acc.CreatedAt = time.UnixMilli(created)
	return acc, err
}

// Account implements users.AccountStore.
func (a *Accounts) Account(ctx context.Context, user id.UserID) (users.Account, error) {
	acc, err := scanAccount(a.pool.QueryRow(ctx, selectAccount+` WHERE user_id = $1`, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return users.Account{}, users.ErrNotFound
	}
	if err != nil {
		return users.Account{}, fmt.Errorf("select account %s: %w", user, err)
	}
	return acc, nil
}

// Accounts implements users.AccountStore.
func (a *Accounts) Accounts(ctx context.Context) ([]users.Account, error) {
	rows, err := a.pool.Query(ctx, selectAccount+` ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("select accounts: %w", err)
	}
	defer rows.Close()
	var out []users.Account
	for rows.Next() {
		acc, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("scan account: %w", err)
		}
		out = append(out, acc)
	}
	return out, rows.Err()
}

// SetPasswordHash implements users.AccountStore.
func (a *Accounts) SetPasswordHash(ctx context.Context, user id.UserID, hash string) error {
	tag, err := a.pool.Exec(ctx, `UPDATE users SET password_hash = NULLIF($2, '') WHERE user_id = $1 AND NOT deactivated`, user, hash)
	if err != nil {
		return fmt.Errorf("set password %s: %w", user, err)
	}
	if tag.RowsAffected() == 0 {
		return users.ErrNotFound
	}
	return nil
}

// DeactivateAccount implements users.AccountStore. Devices go first so that
// their tokens (ON DELETE CASCADE) go with them.
func (a *Accounts) DeactivateAccount(ctx context.Context, user id.UserID) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET deactivated = TRUE, password_hash = NULL WHERE user_id = $1`, user)
		if err != nil {
			return fmt.Errorf("deactivate %s: %w", user, err)
		}
		if tag.RowsAffected() == 0 {
			return users.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM login_tokens WHERE user_id = $1`, user); err != nil {
			return fmt.Errorf("delete login tokens of %s: %w", user, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE user_id = $1`, user); err != nil {
			return fmt.Errorf("delete devices of %s: %w", user, err)
		}
		return nil
	})
}
