package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/syncer"
)

// The sync engine reads the history of the resolved state and the views
// of forked rooms through these (optional) interfaces of its store.
var (
	_ syncer.StateHistoryStore = (*Sync)(nil)
	_ syncer.ForkViewStore     = (*Sync)(nil)
)

// selectStateEntriesBefore resolves a few (type, state key) pairs of the
// state before the first client-visible event at or after seq (the
// room's current snapshot past the latest event), in one round trip: the
// nearest snapshot of the chain that sets a key wins, and only the events
// of those keys are read and parsed. A lazy-loading sync needs the member
// events of a timeline's senders, a handful of keys out of a state that
// may hold thousands (issue #9: reading the whole state for them made
// fan-out quadratic in the room's size).
const selectStateEntriesBefore = `
WITH RECURSIVE snap AS (
    SELECT COALESCE(
        (SELECT e.snapshot_nid FROM events e WHERE e.room_nid = $1 AND e.seq >= $2 AND ` + clientVisible + `
         ORDER BY e.seq LIMIT 1),
        (SELECT snapshot_nid FROM rooms WHERE room_nid = $1)) AS nid
), wanted AS (
    SELECT k.key_nid FROM state_keys k
    JOIN unnest($3::text[], $4::text[]) AS w(t, s) ON k.event_type = w.t AND k.state_key = w.s
), chain AS (
    SELECT parent_nid, key_nids, seqs, 0 AS depth FROM state_snapshots
    WHERE snapshot_nid = (SELECT nid FROM snap)
    UNION ALL
    SELECT s.parent_nid, s.key_nids, s.seqs, c.depth + 1
    FROM state_snapshots s JOIN chain c ON s.snapshot_nid = c.parent_nid
), entries AS (
    SELECT DISTINCT ON (u.k) u.s
    FROM chain c, unnest(c.key_nids, c.seqs) AS u(k, s)
    WHERE u.k IN (SELECT key_nid FROM wanted)
    ORDER BY u.k, c.depth
)
SELECT e.event_json, e.redacted_by IS NOT NULL FROM entries x JOIN events e ON e.room_nid = $1 AND e.seq = x.s`

// readStateEntriesBefore reads the entries of keys in the state
// StateBefore(room, seq) would return, without reading the rest.
func (s *Sync) readStateEntriesBefore(ctx context.Context, room id.RoomID, seq int64, keys []auth.StateKey) (rooms.State, error) {
	st := rooms.State{}
	if len(keys) == 0 {
		return st, nil
	}
	e, err := s.room(ctx, room)
	if err != nil {
		return nil, err
	}
	types, stateKeys := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		types[i], stateKeys[i] = k.Type, k.StateKey
	}
	evs, err := scanEvents(ctx, s.pool, e.version, selectStateEntriesBefore, e.nid, seq, types, stateKeys)
	if err != nil {
		return nil, fmt.Errorf("state entries before %d in %s: %w", seq, room, err)
	}
	for _, ev := range evs {
		st[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	}
	return st, nil
}

const (
	// selectStateDeltas reads the changes of a room's resolved current
	// state after a stream position (sql/0016), in the order they happened.
	selectStateDeltas = `
SELECT k.event_type, k.state_key, d.stream_pos, COALESCE(d.seq, 0), COALESCE(d.prev_seq, 0)
FROM room_state_deltas d JOIN state_keys k ON k.key_nid = d.key_nid
WHERE d.room_nid = $1 AND d.stream_pos > $2
ORDER BY d.stream_pos, d.delta_id`
	// selectStateEventsBySeq reads state events by sequence number, in any
	// place of the graph: the state a room was joined with is outliers.
	selectStateEventsBySeq = storedColumns + ` WHERE e.room_nid = $1 AND e.seq = ANY($2)`
)

// StateDeltas implements syncer.StateHistoryStore.
func (s *Sync) StateDeltas(ctx context.Context, room id.RoomID, after int64) ([]syncer.StateDelta, error) {
	e, err := s.room(ctx, room)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, selectStateDeltas, e.nid, after)
	if err != nil {
		return nil, fmt.Errorf("state deltas of %s after %d: %w", room, after, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncer.StateDelta, error) {
		var d syncer.StateDelta
		err := row.Scan(&d.Key.Type, &d.Key.StateKey, &d.StreamPos, &d.Seq, &d.PrevSeq)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("state deltas of %s after %d: %w", room, after, err)
	}
	return out, nil
}

// StateEvents implements syncer.StateHistoryStore.
func (s *Sync) StateEvents(ctx context.Context, room id.RoomID, seqs []int64) (map[int64]*rooms.StoredEvent, error) {
	out := make(map[int64]*rooms.StoredEvent, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	evs, err := s.stored(ctx, room, selectStateEventsBySeq, func(nid int64) []any { return []any{nid, seqs} })
	if err != nil {
		return nil, fmt.Errorf("state events of %s: %w", room, err)
	}
	for _, se := range evs {
		out[se.Seq] = se
	}
	return out, nil
}
