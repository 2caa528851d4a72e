package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

// The outbox of device list EDUs (sql/0018, docs/e2ee.md): written in the
// transaction of each change, relayed into the federation queue's EDU
// table in one transaction per batch.
const (
	// insertOutboxDevice appends a device's change to its user's chain
	// ($1 user, $2 device, $3 position, $4 deleted).
	insertOutboxDevice = `SELECT device_list_outbox_add($1, $2, $3, $4)`
	// insertOutboxSigning: m.signing_key_update carries no stream id and
	// is no link of the chain.
	insertOutboxSigning = `
INSERT INTO device_list_outbox (stream_id, user_id, kind) VALUES ($1, $2, 'signing')`
	selectIsDeviceWithKeys = `
SELECT EXISTS (SELECT 1 FROM device_keys WHERE user_id = $1 AND device_id = $2)`
	selectOutbox = `
SELECT stream_id, user_id, kind, coalesce(device_id, ''), deleted, prev_ids FROM device_list_outbox
ORDER BY stream_id LIMIT $1`
	// lockOutboxRelay: one relay at a time across the nodes of a cluster,
	// so that a user's EDUs enter the queue in the order of their chain.
	lockOutboxRelay   = `SELECT pg_advisory_xact_lock(hashtext('parley.device_list_outbox'))`
	deleteOutboxEntry = `DELETE FROM device_list_outbox WHERE stream_id = $1`
	// The queue's tables (sql/0009; storage/fedqueue.go writes them the
	// same way): a new destination starts at the fan-out position.
	insertRelayDests = `
INSERT INTO federation_destinations (destination, pdu_cursor)
SELECT d, (SELECT pos FROM federation_fanout) FROM unnest($1::text[]) d ON CONFLICT DO NOTHING`
	insertRelayEDUs = `
INSERT INTO federation_outbound_edus (destination, edu_type, content)
SELECT d, $2, $3 FROM unnest($1::text[]) d`
	selectOutboundHead = `SELECT stream_id FROM device_list_outbound_heads WHERE user_id = $1`
)

// DeviceListOutbox implements keys.OutboxStore.
func (s *Keys) DeviceListOutbox(ctx context.Context, limit int) ([]keys.OutboxEntry, error) {
	rows, err := s.pool.Query(ctx, selectOutbox, limit)
	if err != nil {
		return nil, fmt.Errorf("device list outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.OutboxEntry, error) {
		var e keys.OutboxEntry
		err := row.Scan(&e.StreamID, &e.User, &e.Kind, &e.Device, &e.Deleted, &e.PrevIDs)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("device list outbox: %w", err)
	}
	return out, nil
}

// RelayDeviceListOutbox implements keys.OutboxStore.
func (s *Keys) RelayDeviceListOutbox(ctx context.Context, edus []keys.RelayedEDU) ([]id.ServerName, error) {
	var woken []id.ServerName
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		woken = nil
		seen := map[id.ServerName]bool{}
		if _, err := tx.Exec(ctx, lockOutboxRelay); err != nil {
			return err
		}
		for _, e := range edus {
			tag, err := tx.Exec(ctx, deleteOutboxEntry, e.StreamID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 || len(e.Destinations) == 0 {
				continue // relayed by another node, or nobody to tell
			}
			dests := make([]string, len(e.Destinations))
			for i, d := range e.Destinations {
				dests[i] = string(d)
				if !seen[d] {
					seen[d] = true
					woken = append(woken, d)
				}
			}
			if _, err := tx.Exec(ctx, insertRelayDests, dests); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insertRelayEDUs, dests, e.Type, []byte(e.Content)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("relay device list outbox: %w", err)
	}
	return woken, nil
}

// OutboundHead implements keys.OutboxStore.
func (s *Keys) OutboundHead(ctx context.Context, user id.UserID) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, selectOutboundHead, user).Scan(&head)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("device list head of %s: %w", user, err)
	}
	return head, nil
}
