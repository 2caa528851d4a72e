package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/accountdata"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// AccountData implements accountdata.Store and the sync engine's account
// data stream on the account_data table.
type AccountData struct {
	pool *pgxpool.Pool
}

var (
	_ accountdata.Store        = (*AccountData)(nil)
	_ syncer.AccountDataReader = (*AccountData)(nil)
)

// NewAccountData returns the account data store on pool.
func NewAccountData(pool *pgxpool.Pool) *AccountData { return &AccountData{pool: pool} }

const (
	// nextStreamPos takes the next position of a stream; the row lock
	// held until COMMIT orders the writers' commits by position.
	nextStreamPos     = `UPDATE stream_counters SET pos = pos + 1 WHERE stream = $1 RETURNING pos`
	selectCounterPos  = `SELECT pos FROM stream_counters WHERE stream = $1`
	upsertAccountData = `
INSERT INTO account_data (user_id, room_id, data_type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = EXCLUDED.content, stream_pos = EXCLUDED.stream_pos`
	selectAccountData = `
SELECT content FROM account_data WHERE user_id = $1 AND room_id = $2 AND data_type = $3`
	selectAccountDataBetween = `
SELECT room_id, data_type, content FROM account_data
WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`
)

// PutAccountData implements accountdata.Store.
func (s *AccountData) PutAccountData(ctx context.Context, user id.UserID, room id.RoomID, typ string, content json.RawMessage) (int64, error) {
	var pos int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, nextStreamPos, "account_data").Scan(&pos); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, upsertAccountData, user, room, typ, []byte(content), pos)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put account data %s of %s: %w", typ, user, err)
	}
	return pos, nil
}

// AccountData implements accountdata.Store.
func (s *AccountData) AccountData(ctx context.Context, user id.UserID, room id.RoomID, typ string) (json.RawMessage, error) {
	var content []byte
	err := s.pool.QueryRow(ctx, selectAccountData, user, room, typ).Scan(&content)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, accountdata.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account data %s of %s: %w", typ, user, err)
	}
	return content, nil
}

// AccountDataPos implements syncer.AccountDataReader.
func (s *AccountData) AccountDataPos(ctx context.Context) (int64, error) {
	return streamPos(ctx, s.pool, "account_data")
}

// AccountDataBetween implements syncer.AccountDataReader.
func (s *AccountData) AccountDataBetween(ctx context.Context, user id.UserID, after, upTo int64) ([]syncer.AccountData, error) {
	rows, err := s.pool.Query(ctx, selectAccountDataBetween, user, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("account data of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncer.AccountData, error) {
		var e syncer.AccountData
		var content []byte
		err := row.Scan(&e.Room, &e.Type, &content)
		e.Content = content
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("account data of %s: %w", user, err)
	}
	return out, nil
}

// streamPos reads a stream counter.
func streamPos(ctx context.Context, pool *pgxpool.Pool, stream string) (int64, error) {
	var pos int64
	if err := pool.QueryRow(ctx, selectCounterPos, stream).Scan(&pos); err != nil {
		return 0, fmt.Errorf("position of stream %s: %w", stream, err)
	}
	return pos, nil
}
