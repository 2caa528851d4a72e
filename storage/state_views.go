package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

var _ rooms.ForkViews = (*Rooms)(nil)

const (
	selectForkedFrom = `SELECT first_seq FROM room_forks WHERE room_nid = $1`
	// selectSnapshotsInRange reads the snapshots (states before) of the
	// room's events in a range of sequence numbers, those whose state is
	// known.
	selectSnapshotsInRange = `
SELECT e.seq, e.snapshot_nid FROM events e
WHERE e.room_nid = $1 AND e.seq >= $2 AND e.seq <= $3 AND e.snapshot_nid >= 0`
	// selectSnapshotKeys walks the snapshots and their ancestors once each
	// (chains share their full ancestor) and reads, in each, where it sets
	// the room's history visibility and the user's membership:
	// array_position scans the arrays without unnesting a full snapshot
	// of a large room once per event.
	selectSnapshotKeys = `
WITH RECURSIVE nodes AS (
    SELECT unnest($1::bigint[]) AS nid
    UNION
    SELECT s.parent_nid FROM state_snapshots s JOIN nodes n ON s.snapshot_nid = n.nid
    WHERE s.parent_nid IS NOT NULL
), k AS (
    SELECT (SELECT key_nid FROM state_keys WHERE event_type = 'm.room.history_visibility' AND state_key = '') AS hv,
           (SELECT key_nid FROM state_keys WHERE event_type = 'm.room.member' AND state_key = $2) AS me
)
SELECT s.snapshot_nid, COALESCE(s.parent_nid, 0),
       COALESCE(s.seqs[array_position(s.key_nids, k.hv)], 0), COALESCE(s.seqs[array_position(s.key_nids, k.me)], 0)
FROM state_snapshots s, k WHERE s.snapshot_nid IN (SELECT nid FROM nodes)`
	selectViewEvents = `
SELECT e.seq, e.membership, CASE WHEN e.event_type = 'm.room.history_visibility' THEN e.event_json END
FROM events e WHERE e.room_nid = $1 AND e.seq = ANY($2)`
)

// ForkedFrom implements rooms.ForkViews (sql/0016's room_forks).
func (r *Rooms) ForkedFrom(ctx context.Context, room id.RoomID) (int64, bool, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return 0, false, err
	}
	var seq int64
	err = r.pool.QueryRow(ctx, selectForkedFrom, e.nid).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("fork of %s: %w", room, err)
	}
	return seq, true, nil
}

// UserViews implements rooms.ForkViews: three queries whatever the number
// of events (their snapshots, the two keys in each snapshot of their
// chains, the events those point at).
func (r *Rooms) UserViews(ctx context.Context, room id.RoomID, user id.UserID, from, to int64) (map[int64]rooms.UserView, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, selectSnapshotsInRange, e.nid, from, to)
	if err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", room, err)
	}
	snapOf := map[int64]int64{}
	var snaps []int64
	seen := map[int64]bool{}
	for rows.Next() {
		var seq, snap int64
		if err := rows.Scan(&seq, &snap); err != nil {
			rows.Close()
			return nil, fmt.Errorf("snapshots of %s: %w", room, err)
		}
		snapOf[seq] = snap
		if snap > 0 && !seen[snap] {
			seen[snap] = true
			snaps = append(snaps, snap)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", room, err)
	}
	type node struct{ parent, hv, me int64 }
	nodes := map[int64]node{}
	if len(snaps) > 0 {
		rows, err := r.pool.Query(ctx, selectSnapshotKeys, snaps, string(user))
		if err != nil {
			return nil, fmt.Errorf("snapshot keys of %s: %w", room, err)
		}
		for rows.Next() {
			var nid int64
			var n node
			if err := rows.Scan(&nid, &n.parent, &n.hv, &n.me); err != nil {
				rows.Close()
				return nil, fmt.Errorf("snapshot keys of %s: %w", room, err)
			}
			nodes[nid] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("snapshot keys of %s: %w", room, err)
		}
	}
	// The nearest snapshot of the chain that sets a key wins.
	resolve := func(snap int64) (hv, me int64) {
		for snap != 0 && (hv == 0 || me == 0) {
			n, ok := nodes[snap]
			if !ok {
				break
			}
			if hv == 0 {
				hv = n.hv
			}
			if me == 0 {
				me = n.me
			}
			snap = n.parent
		}
		return hv, me
	}
	type entry struct{ hv, me int64 }
	bySnap := map[int64]entry{}
	var want []int64
	for _, snap := range snaps {
		hv, me := resolve(snap)
		bySnap[snap] = entry{hv, me}
		for _, s := range []int64{hv, me} {
			if s != 0 {
				want = append(want, s)
			}
		}
	}
	hvOf, memberOf := map[int64]string{}, map[int64]string{}
	if len(want) > 0 {
		rows, err := r.pool.Query(ctx, selectViewEvents, e.nid, want)
		if err != nil {
			return nil, fmt.Errorf("view events of %s: %w", room, err)
		}
		for rows.Next() {
			var seq int64
			var membership *string
			var raw []byte
			if err := rows.Scan(&seq, &membership, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("view events of %s: %w", room, err)
			}
			if membership != nil {
				memberOf[seq] = *membership
			}
			if raw != nil {
				var hv struct {
					Content struct {
						HV string `json:"history_visibility"`
					} `json:"content"`
				}
				if json.Unmarshal(raw, &hv) == nil {
					hvOf[seq] = hv.Content.HV
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("view events of %s: %w", room, err)
		}
	}
	out := make(map[int64]rooms.UserView, len(snapOf))
	for seq, snap := range snapOf {
		ent := bySnap[snap]
		out[seq] = rooms.UserView{HistoryVisibility: hvOf[ent.hv], Membership: memberOf[ent.me]}
	}
	return out, nil
}
