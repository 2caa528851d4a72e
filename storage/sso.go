package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/sso"
	"github.com/parleyhq/parley/users"
)

// SSO implements sso.Store: pending OpenID Connect flows and the external
// identities linked to accounts (sql/0010_sso.sql).
type SSO struct {
	pool *pgxpool.Pool
}

// NewSSO returns the SSO store on pool.
func NewSSO(pool *pgxpool.Pool) *SSO { return &SSO{pool: pool} }

var _ sso.Store = (*SSO)(nil)

// CreateFlow implements sso.Store; flows left expired by browsers that
// never came back are swept on the way.
func (s *SSO) CreateFlow(ctx context.Context, f sso.Flow) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sso_flows WHERE expires_ts < $1`, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("sweep sso flows: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO sso_flows (state_hash, provider, nonce, code_verifier, redirect_url, uia_session, expires_ts)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, f.StateHash[:], f.Provider, f.Nonce, f.CodeVerifier, f.RedirectURL, f.UIASession, f.ExpiresAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert sso flow: %w", err)
		}
		return nil
	})
}

// ConsumeFlow implements sso.Store.
func (s *SSO) ConsumeFlow(ctx context.Context, stateHash [32]byte, now time.Time) (sso.Flow, error) {
	f := sso.Flow{StateHash: stateHash}
	var expires int64
	err := s.pool.QueryRow(ctx, `DELETE FROM sso_flows WHERE state_hash = $1
RETURNING provider, nonce, code_verifier, redirect_url, uia_session, expires_ts`, stateHash[:]).
		Scan(&f.Provider, &f.Nonce, &f.CodeVerifier, &f.RedirectURL, &f.UIASession, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sso.Flow{}, sso.ErrNotFound
	}
	if err != nil {
		return sso.Flow{}, fmt.Errorf("consume sso flow: %w", err)
	}
	if expires <= now.UnixMilli() {
		return sso.Flow{}, sso.ErrNotFound
	}
	f.ExpiresAt = time.UnixMilli(expires)
	return f, nil
}

// LinkedProviders implements sso.Store.
func (s *SSO) LinkedProviders(ctx context.Context, user id.UserID) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT auth_provider FROM user_external_ids WHERE user_id = $1 ORDER BY auth_provider`, user)
	if err != nil {
		return nil, fmt.Errorf("select linked providers: %w", err)
	}
	providers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("select linked providers: %w", err)
	}
	return providers, nil
}

// ExternalUser implements sso.Store.
func (s *SSO) ExternalUser(ctx context.Context, provider, subject string) (id.UserID, error) {
	var user id.UserID
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM user_external_ids WHERE auth_provider = $1 AND external_id = $2`,
		provider, subject).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", sso.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("select external id: %w", err)
	}
	return user, nil
}

// CreateLinkedAccount implements sso.Store.
func (s *SSO) CreateLinkedAccount(ctx context.Context, acc users.Account, provider, subject string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
		_, err = tx.Exec(ctx, `INSERT INTO user_external_ids (auth_provider, external_id, user_id, created_ts) VALUES ($1, $2, $3, $4)`,
			provider, subject, acc.UserID, acc.CreatedAt.UnixMilli())
		if isUniqueViolation(err) {
			return sso.ErrExists
		}
		if err != nil {
			return fmt.Errorf("insert external id: %w", err)
		}
		return nil
	})
}

// LinkExternalID implements sso.Store.
func (s *SSO) LinkExternalID(ctx context.Context, provider, subject string, user id.UserID, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO user_external_ids (auth_provider, external_id, user_id, created_ts) VALUES ($1, $2, $3, $4)`,
		provider, subject, user, at.UnixMilli())
	if isUniqueViolation(err) {
		return sso.ErrExists
	}
	if err != nil {
		return fmt.Errorf("insert external id: %w", err)
	}
	return nil
}
