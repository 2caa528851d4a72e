package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/ephemeral"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// Receipts implements ephemeral.ReceiptStore and the sync engine's
// receipts stream on the receipts table.
type Receipts struct {
	pool *pgxpool.Pool
}

var (
	_ ephemeral.ReceiptStore = (*Receipts)(nil)
	_ syncer.ReceiptReader   = (*Receipts)(nil)
)

// NewReceipts returns the receipt store on pool.
func NewReceipts(pool *pgxpool.Pool) *Receipts { return &Receipts{pool: pool} }

const (
	upsertReceipt = `
INSERT INTO receipts (room_id, user_id, receipt_type, thread_id, event_id, ts, stream_pos)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (room_id, user_id, receipt_type, thread_id)
DO UPDATE SET event_id = EXCLUDED.event_id, ts = EXCLUDED.ts, stream_pos = EXCLUDED.stream_pos`
	selectReceiptsBetween = `
SELECT room_id, user_id, receipt_type, thread_id, event_id, ts FROM receipts
WHERE room_id = ANY($1) AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos`
)

// PutReceipt implements ephemeral.ReceiptStore: it replaces the user's
// receipt of that type and thread in the room.
func (s *Receipts) PutReceipt(ctx context.Context, r syncer.Receipt) (int64, error) {
	var pos int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, nextStreamPos, "receipts").Scan(&pos); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, upsertReceipt, r.Room, r.User, r.Type, r.ThreadID, r.EventID, r.TS, pos)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put receipt of %s in %s: %w", r.User, r.Room, err)
	}
	return pos, nil
}

// ReceiptsPos implements syncer.ReceiptReader.
func (s *Receipts) ReceiptsPos(ctx context.Context) (int64, error) {
	return streamPos(ctx, s.pool, "receipts")
}

// ReceiptsBetween implements syncer.ReceiptReader.
func (s *Receipts) ReceiptsBetween(ctx context.Context, rooms []id.RoomID, after, upTo int64) ([]syncer.Receipt, error) {
	names := make([]string, len(rooms))
	for i, r := range rooms {
		names[i] = string(r)
	}
	rows, err := s.pool.Query(ctx, selectReceiptsBetween, names, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncer.Receipt, error) {
		var r syncer.Receipt
		err := row.Scan(&r.Room, &r.User, &r.Type, &r.ThreadID, &r.EventID, &r.TS)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return out, nil
}
