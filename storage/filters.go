package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// Filters implements syncer.FilterStore.
type Filters struct {
	pool *pgxpool.Pool
}

var _ syncer.FilterStore = (*Filters)(nil)

// NewFilters returns the filter store on pool.
func NewFilters(pool *pgxpool.Pool) *Filters { return &Filters{pool: pool} }

// insertFilter returns the id of an identical filter of the user when one
// exists: the DO UPDATE is a no-op that makes RETURNING see the row.
const insertFilter = `
INSERT INTO sync_filters (user_id, filter_id, filter_hash, filter_json, created_ts)
VALUES ($1, nextval('sync_filter_ids'), $2, $3, $4)
ON CONFLICT (user_id, filter_hash) DO UPDATE SET filter_hash = EXCLUDED.filter_hash
RETURNING filter_id`

// PutFilter implements syncer.FilterStore.
func (f *Filters) PutFilter(ctx context.Context, user id.UserID, def []byte) (string, error) {
	sum := sha256.Sum256(def)
	var fid int64
	if err := f.pool.QueryRow(ctx, insertFilter, user, sum[:], def, time.Now().UnixMilli()).Scan(&fid); err != nil {
		return "", fmt.Errorf("insert filter of %s: %w", user, err)
	}
	return strconv.FormatInt(fid, 10), nil
}

const selectFilter = `SELECT filter_json FROM sync_filters WHERE user_id = $1 AND filter_id = $2`

// Filter implements syncer.FilterStore.
func (f *Filters) Filter(ctx context.Context, user id.UserID, filterID string) ([]byte, error) {
	fid, err := strconv.ParseInt(filterID, 10, 64)
	if err != nil {
		return nil, syncer.ErrFilterNotFound
	}
	var def []byte
	err = f.pool.QueryRow(ctx, selectFilter, user, fid).Scan(&def)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, syncer.ErrFilterNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("select filter %s of %s: %w", filterID, user, err)
	}
	return def, nil
}
