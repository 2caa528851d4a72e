package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/users"
)

// releaseAbandonedTokens gives back the registration token uses that
// expired sessions reserved and never completed.
const releaseAbandonedTokens = `
UPDATE registration_tokens t SET pending = GREATEST(t.pending - s.n, 0)
FROM (SELECT data->>'registration_token' AS token, count(*) AS n
      FROM uia_sessions WHERE expires_ts < $1 AND data ? 'registration_token'
      GROUP BY 1) s
WHERE t.token = s.token`

// CreateUIASession implements users.UIAStore. Expired sessions are swept
// here, so the table stays small without a background job.
func (a *Accounts) CreateUIASession(ctx context.Context, s users.UIASession) error {
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, releaseAbandonedTokens, s.CreatedAt.UnixMilli()); err != nil {
			return fmt.Errorf("release abandoned registration tokens: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM uia_sessions WHERE expires_ts < $1`, s.CreatedAt.UnixMilli()); err != nil {
			return fmt.Errorf("sweep uia sessions: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO uia_sessions (session_id, operation, user_id, completed, data, created_ts, expires_ts) VALUES ($1, $2, NULLIF($3, ''), $4, '{}', $5, $6)`,
			s.ID, s.Operation, s.UserID, s.Completed, s.CreatedAt.UnixMilli(), s.ExpiresAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("insert uia session: %w", err)
		}
		return nil
	})
}

// UIASession implements users.UIAStore.
func (a *Accounts) UIASession(ctx context.Context, sessionID string, now time.Time) (users.UIASession, error) {
	s := users.UIASession{ID: sessionID}
	var created, expires int64
	err := a.pool.QueryRow(ctx, `SELECT operation, COALESCE(user_id, ''), completed, COALESCE(data->>'registration_token', ''), created_ts, expires_ts FROM uia_sessions WHERE session_id = $1 AND expires_ts > $2`,
		sessionID, now.UnixMilli()).Scan(&s.Operation, &s.UserID, &s.Completed, &s.RegistrationToken, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return users.UIASession{}, users.ErrNotFound
	}
	if err != nil {
		return users.UIASession{}, fmt.Errorf("select uia session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = time.UnixMilli(created), time.UnixMilli(expires)
	return s, nil
}

// CompleteUIAStage implements users.UIAStore.
func (a *Accounts) CompleteUIAStage(ctx context.Context, sessionID, stage, regToken string) error {
	const q = `
UPDATE uia_sessions
SET completed = array_append(completed, $2),
    data = CASE WHEN $3 = '' THEN data ELSE jsonb_set(data, '{registration_token}', to_jsonb($3::text)) END
WHERE session_id = $1 AND NOT ($2 = ANY(completed))`
	if _, err := a.pool.Exec(ctx, q, sessionID, stage, regToken); err != nil {
		return fmt.Errorf("complete uia stage: %w", err)
	}
	return nil
}

// DeleteUIASession implements users.UIAStore.
func (a *Accounts) DeleteUIASession(ctx context.Context, sessionID string) error {
	if _, err := a.pool.Exec(ctx, `DELETE FROM uia_sessions WHERE session_id = $1`, sessionID); err != nil {
		return fmt.Errorf("delete uia session: %w", err)
	}
	return nil
}
