package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/id"
)

// ServerKeys implements keyring.Store: remote servers' verify keys.
type ServerKeys struct {
	pool *pgxpool.Pool
}

var _ keyring.Store = (*ServerKeys)(nil)

// NewServerKeys returns the server key cache on pool.
func NewServerKeys(pool *pgxpool.Pool) *ServerKeys { return &ServerKeys{pool: pool} }

const selectServerKeys = `
SELECT key_id, public_key, valid_until_ts, expired_ts, fetched_ts, response
FROM server_keys WHERE server_name = $1 ORDER BY key_id`

// ServerKeys implements keyring.Store.
func (s *ServerKeys) ServerKeys(ctx context.Context, server id.ServerName) ([]keyring.StoredKey, error) {
	rows, err := s.pool.Query(ctx, selectServerKeys, server)
	if err != nil {
		return nil, fmt.Errorf("select keys of %s: %w", server, err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keyring.StoredKey, error) {
		k := keyring.StoredKey{Server: server}
		var pub []byte
		err := row.Scan(&k.KeyID, &pub, &k.ValidUntilTS, &k.ExpiredTS, &k.FetchedTS, &k.Response)
		k.Key = pub
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("select keys of %s: %w", server, err)
	}
	return keys, nil
}

// upsertServerKey keeps the most recently fetched answer for a key: a later
// response may move a key to old_verify_keys or extend its validity.
const upsertServerKey = `
INSERT INTO server_keys (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts, response)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (server_name, key_id) DO UPDATE SET
    public_key = EXCLUDED.public_key,
    valid_until_ts = EXCLUDED.valid_until_ts,
    expired_ts = EXCLUDED.expired_ts,
    fetched_ts = EXCLUDED.fetched_ts,
    response = EXCLUDED.response
WHERE server_keys.fetched_ts <= EXCLUDED.fetched_ts`

// StoreServerKeys implements keyring.Store, in one transaction.
func (s *ServerKeys) StoreServerKeys(ctx context.Context, keys []keyring.StoredKey) error {
	if len(keys) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, k := range keys {
		batch.Queue(upsertServerKey, k.Server, k.KeyID, []byte(k.Key), k.ValidUntilTS, k.ExpiredTS, k.FetchedTS, k.Response)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("store keys of %s: %w", keys[0].Server, err)
	}
	return nil
}
