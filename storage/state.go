package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// maxSnapshotChain bounds how many deltas separate a snapshot from its full
// ancestor: reading a snapshot reads at most this many rows plus one.
const maxSnapshotChain = 15

const (
	// insertDelta writes a delta on parent unless the chain is too long
	// (then no row comes back and a full snapshot is written instead).
	insertDelta = `
INSERT INTO state_snapshots (room_nid, parent_nid, chain_len, key_nids, seqs)
SELECT $1, $2, chain_len + 1, $3, $4 FROM state_snapshots
WHERE snapshot_nid = $2 AND chain_len < $5
RETURNING snapshot_nid`
	insertFull = `
INSERT INTO state_snapshots (room_nid, parent_nid, chain_len, key_nids, seqs)
VALUES ($1, NULL, 0, $2, $3) RETURNING snapshot_nid`
	// selectSnapshotChain returns a snapshot and its ancestors, the full
	// one first.
	selectSnapshotChain = `
WITH RECURSIVE chain AS (
    SELECT parent_nid, key_nids, seqs, 0 AS depth FROM state_snapshots WHERE snapshot_nid = $1
    UNION ALL
    SELECT s.parent_nid, s.key_nids, s.seqs, c.depth + 1
    FROM state_snapshots s JOIN chain c ON s.snapshot_nid = c.parent_nid
)
SELECT key_nids, seqs FROM chain ORDER BY depth DESC`
	// selectEventSnapshot reads the state before the first event at or
	// after seq that clients see: with events received over federation the
	// per-room sequence has gaps where outliers, soft-failed and rejected
	// events sit (sql/0008), whose snapshots are not the timeline's.
	selectEventSnapshot = `
SELECT snapshot_nid FROM events e WHERE room_nid = $1 AND seq >= $2 AND ` + clientVisible + `
ORDER BY seq LIMIT 1`
	selectRoomSnapshot = `SELECT snapshot_nid FROM rooms WHERE room_nid = $1`
)

// newSnapshot records the state after setting key to the event at seq on
// top of snapshot parent (0: the empty state) and returns its nid.
func (r *Rooms) newSnapshot(ctx context.Context, tx pgx.Tx, room, parent, key, seq int64) (int64, error) {
	var nid int64
	if parent != 0 {
		err := tx.QueryRow(ctx, insertDelta, room, parent, []int64{key}, []int64{seq}, maxSnapshotChain).Scan(&nid)
		if err == nil {
			return nid, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("insert state delta: %w", err)
		}
	}
	entries, err := loadSnapshot(ctx, tx, parent)
	if err != nil {
		return 0, err
	}
	entries[key] = seq
	keys, seqs := make([]int64, 0, len(entries)), make([]int64, 0, len(entries))
	for k, s := range entries {
		keys, seqs = append(keys, k), append(seqs, s)
	}
	if err := tx.QueryRow(ctx, insertFull, room, keys, seqs).Scan(&nid); err != nil {
		return 0, fmt.Errorf("insert state snapshot: %w", err)
	}
	return nid, nil
}

// loadSnapshot resolves a snapshot to its entries, state key nid → seq.
func loadSnapshot(ctx context.Context, q querier, nid int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if nid == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, selectSnapshotChain, nid)
	if err != nil {
		return nil, fmt.Errorf("read state snapshot %d: %w", nid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var keys, seqs []int64
		if err := rows.Scan(&keys, &seqs); err != nil {
			return nil, fmt.Errorf("read state snapshot %d: %w", nid, err)
		}
		for i, k := range keys {
			out[k] = seqs[i]
		}
	}
	return out, rows.Err()
}

// StateBefore implements rooms.EventReader.
func (r *Rooms) StateBefore(ctx context.Context, room id.RoomID, seq int64) (rooms.State, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	var snap int64
	err = r.pool.QueryRow(ctx, selectEventSnapshot, e.nid, seq).Scan(&snap)
	if errors.Is(err, pgx.ErrNoRows) {
		// After the latest event: the current snapshot.
		err = r.pool.QueryRow(ctx, selectRoomSnapshot, e.nid).Scan(&snap)
	}
	if err != nil {
		return nil, fmt.Errorf("state before %d in %s: %w", seq, room, err)
	}
	entries, err := loadSnapshot(ctx, r.pool, snap)
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(entries))
	for _, s := range entries {
		seqs = append(seqs, s)
	}
	evs, err := scanEvents(ctx, r.pool, e.version, selectEventsBySeq, e.nid, seqs)
	if err != nil {
		return nil, fmt.Errorf("state before %d in %s: %w", seq, room, err)
	}
	st := make(rooms.State, len(evs))
	for _, ev := range evs {
		st[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	}
	return st, nil
}
