package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
)

// InboundTxns remembers the answers to other servers' transactions (PUT
// /_matrix/federation/v1/send/{txnId}, table federation_inbound_txns of
// sql/0008): a retried transaction gets the same answer and is not
// processed again.
type InboundTxns struct {
	pool *pgxpool.Pool
}

// NewInboundTxns returns the store on pool.
func NewInboundTxns(pool *pgxpool.Pool) *InboundTxns { return &InboundTxns{pool: pool} }

const (
	selectInboundTxn = `SELECT response FROM federation_inbound_txns WHERE origin = $1 AND txn_id = $2`
	insertInboundTxn = `
INSERT INTO federation_inbound_txns (origin, txn_id, response, created_ts) VALUES ($1, $2, $3, $4)
ON CONFLICT (origin, txn_id) DO NOTHING`
	deleteInboundTxns = `DELETE FROM federation_inbound_txns WHERE created_ts < $1`
)

// InboundTxn returns the answer given to origin's transaction txnID; ok
// is false when the transaction is new.
func (s *InboundTxns) InboundTxn(ctx context.Context, origin id.ServerName, txnID string) (response []byte, ok bool, err error) {
	err = s.pool.QueryRow(ctx, selectInboundTxn, origin, txnID).Scan(&response)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("look up transaction %s of %s: %w", txnID, origin, err)
	}
	return response, true, nil
}

// SaveInboundTxn records the answer to origin's transaction txnID. The
// first answer recorded stays.
func (s *InboundTxns) SaveInboundTxn(ctx context.Context, origin id.ServerName, txnID string, response []byte) error {
	if _, err := s.pool.Exec(ctx, insertInboundTxn, origin, txnID, response, nowMS()); err != nil {
		return fmt.Errorf("record transaction %s of %s: %w", txnID, origin, err)
	}
	return nil
}

// PruneInboundTxns forgets transactions older than maxAge (senders retry
// a transaction for minutes or hours, not days) and returns how many.
func (s *InboundTxns) PruneInboundTxns(ctx context.Context, maxAge time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteInboundTxns, time.Now().Add(-maxAge).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune inbound transactions: %w", err)
	}
	return tag.RowsAffected(), nil
}
