package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

const (
	// pruneToDeviceTxns forgets the sender's transaction ids older than a
	// day: a client retries a send within minutes, and the table would
	// otherwise grow with every send.
	pruneToDeviceTxns = `DELETE FROM to_device_txns WHERE sender = $1 AND device_id = $2 AND ts < $3`
	selectToDeviceTxn = `SELECT EXISTS (SELECT 1 FROM to_device_txns WHERE sender = $1 AND device_id = $2 AND txn_id = $3)`
	insertToDeviceTxn = `
INSERT INTO to_device_txns (sender, device_id, txn_id, ts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	// Messages go only to devices that exist; "*" is every device.
	insertToDeviceOne = `
INSERT INTO to_device_messages (stream_pos, user_id, device_id, message)
SELECT $1, user_id, device_id, $4 FROM devices WHERE user_id = $2 AND device_id = $3
ON CONFLICT DO NOTHING`
	insertToDeviceAll = `
INSERT INTO to_device_messages (stream_pos, user_id, device_id, message)
SELECT $1, user_id, device_id, $3 FROM devices WHERE user_id = $2
ON CONFLICT DO NOTHING`
	// takeToDevice deletes the acknowledged messages and reads the next
	// ones in one statement (the SELECT reads the snapshot before the
	// DELETE; the ranges do not overlap).
	takeToDevice = `
WITH acked AS (
    DELETE FROM to_device_messages WHERE user_id = $1 AND device_id = $2 AND stream_pos <= $3
)
SELECT stream_pos, message FROM to_device_messages
WHERE user_id = $1 AND device_id = $2 AND stream_pos > $3 AND stream_pos <= $4
ORDER BY stream_pos LIMIT $5`
)

// toDeviceTxnLifetime is how long a to-device transaction id is
// remembered.
const toDeviceTxnLifetime = 24 * time.Hour

// ToDevicePos implements keys.ToDeviceStore.
func (s *Keys) ToDevicePos(ctx context.Context) (int64, error) {
	return streamPos(ctx, s.pool, "to_device")
}

// ToDeviceTxnSeen implements keys.ToDeviceStore.
func (s *Keys) ToDeviceTxnSeen(ctx context.Context, txn keys.TxnKey) (bool, error) {
	var seen bool
	if err := s.pool.QueryRow(ctx, selectToDeviceTxn, txn.Sender, txn.Device, txn.TxnID).Scan(&seen); err != nil {
		return false, fmt.Errorf("to-device transaction: %w", err)
	}
	return seen, nil
}

// SendToDevice implements keys.ToDeviceStore: the transaction id, the
// position and the messages commit together, so a retried send is either
// wholly new or wholly a duplicate.
func (s *Keys) SendToDevice(ctx context.Context, txn keys.TxnKey, msgs []keys.ToDeviceMessage) (pos int64, recipients []id.UserID, dup bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		pos, recipients, dup = 0, nil, false
		now := time.Now()
		if _, err := tx.Exec(ctx, pruneToDeviceTxns, txn.Sender, txn.Device, now.Add(-toDeviceTxnLifetime).UnixMilli()); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, insertToDeviceTxn, txn.Sender, txn.Device, txn.TxnID, now.UnixMilli())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			dup = true
			return nil
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := tx.QueryRow(ctx, nextStreamPos, "to_device").Scan(&pos); err != nil {
			return err
		}
		got := map[id.UserID]bool{}
		for _, m := range msgs {
			if m.Device == "*" {
				tag, err = tx.Exec(ctx, insertToDeviceAll, pos, m.User, []byte(m.Message))
			} else {
				tag, err = tx.Exec(ctx, insertToDeviceOne, pos, m.User, m.Device, []byte(m.Message))
			}
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 && !got[m.User] {
				got[m.User] = true
				recipients = append(recipients, m.User)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, false, fmt.Errorf("send to-device messages: %w", err)
	}
	return pos, recipients, dup, nil
}

// TakeToDevice implements keys.ToDeviceStore. A device known to have no
// message at or below upTo (toDeviceEmpty) has nothing to take or delete:
// no query — in a fan-out, the to-device stream does not move.
func (s *Keys) TakeToDevice(ctx context.Context, user id.UserID, device id.DeviceID, after, upTo int64, limit int) ([]keys.PendingMessage, error) {
	if after <= upTo && s.toDeviceEmpty.emptyThrough(user, device, upTo) {
		return nil, nil
	}
	out, err := s.takeToDevice(ctx, user, device, after, upTo, limit)
	if err != nil {
		return nil, err
	}
	// The statement deleted every message at or below after and found
	// those of (after, upTo]: none left at or below after, or upTo.
	learned := after
	if len(out) == 0 {
		learned = max(after, upTo)
	}
	s.toDeviceEmpty.learn(user, device, learned)
	return out, nil
}

func (s *Keys) takeToDevice(ctx context.Context, user id.UserID, device id.DeviceID, after, upTo int64, limit int) ([]keys.PendingMessage, error) {
	rows, err := s.pool.Query(ctx, takeToDevice, user, device, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("to-device messages of %s %s: %w", user, device, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (keys.PendingMessage, error) {
		var m keys.PendingMessage
		var raw []byte
		err := row.Scan(&m.Pos, &raw)
		m.Message = raw
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("to-device messages of %s %s: %w", user, device, err)
	}
	return out, nil
}

// expireToDevice deletes at most a batch of messages at a time, so that
// a first run over a big backlog holds no long lock.
const (
	expireToDevice = `
DELETE FROM to_device_messages WHERE ctid IN (SELECT ctid FROM to_device_messages WHERE ts < $1 LIMIT 10000)`
	expireToDeviceTxns = `DELETE FROM to_device_txns WHERE ts < $1`
)

// ExpireToDevice implements keys.ToDeviceStore.
func (s *Keys) ExpireToDevice(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for {
		tag, err := s.pool.Exec(ctx, expireToDevice, before.UnixMilli())
		if err != nil {
			return n, fmt.Errorf("expire to-device messages: %w", err)
		}
		n += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			break
		}
	}
	if _, err := s.pool.Exec(ctx, expireToDeviceTxns, time.Now().Add(-toDeviceTxnLifetime).UnixMilli()); err != nil {
		return n, fmt.Errorf("expire to-device transaction ids: %w", err)
	}
	return n, nil
}
