package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/profiles"
)

// Profiles implements profiles.Store and profiles.DirectoryStore.
type Profiles struct {
	pool *pgxpool.Pool
}

var (
	_ profiles.Store          = (*Profiles)(nil)
	_ profiles.DirectoryStore = (*Profiles)(nil)
)

// NewProfiles returns the profile store on pool.
func NewProfiles(pool *pgxpool.Pool) *Profiles { return &Profiles{pool: pool} }

// selectProfile reads the profile of an account; the outer join tells an
// account without a profile row (an empty profile) from no account.
const selectProfile = `
SELECT p.fields FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id
WHERE u.user_id = $1`

// Profile implements profiles.Store.
func (s *Profiles) Profile(ctx context.Context, user id.UserID) (profiles.Profile, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, selectProfile, user).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, profiles.ErrUnknownUser
	}
	if err != nil {
		return nil, fmt.Errorf("select profile %s: %w", user, err)
	}
	return decodeProfile(raw)
}

func decodeProfile(raw []byte) (profiles.Profile, error) {
	p := profiles.Profile{}
	if raw == nil {
		return p, nil
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return p, nil
}

// lockProfile creates the account's profile row if it is missing and
// locks it; no row means no account.
const lockProfile = `
WITH ins AS (
    INSERT INTO profiles (user_id)
    SELECT user_id FROM users WHERE user_id = $1
    ON CONFLICT (user_id) DO NOTHING
)
SELECT fields FROM profiles WHERE user_id = $1 FOR UPDATE`

const updateProfile = `UPDATE profiles SET fields = $2 WHERE user_id = $1`

// UpdateProfile implements profiles.Store.
func (s *Profiles) UpdateProfile(ctx context.Context, user id.UserID, update func(profiles.Profile) (profiles.Profile, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		raw, err := lockProfileRow(ctx, tx, user)
		if err != nil {
			return err
		}
		cur, err := decodeProfile(raw)
		if err != nil {
			return err
		}
		next, err := update(cur)
		if err != nil {
			return err
		}
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode profile %s: %w", user, err)
		}
		if _, err := tx.Exec(ctx, updateProfile, user, b); err != nil {
			return fmt.Errorf("update profile %s: %w", user, err)
		}
		return nil
	})
}

// lockProfileRow returns the locked profile of an account. A row the
// statement's own insert just made is not visible to its SELECT (one
// snapshot), so a missing row is looked for once more.
func lockProfileRow(ctx context.Context, tx pgx.Tx, user id.UserID) ([]byte, error) {
	for range 2 {
		var raw []byte
		err := tx.QueryRow(ctx, lockProfile, user).Scan(&raw)
		if err == nil {
			return raw, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("lock profile %s: %w", user, err)
		}
	}
	return nil, profiles.ErrUnknownUser
}
