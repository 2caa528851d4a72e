package storage

// The topological order of a room's history (sql/0015_topological_order.sql,
// sql/0024_topo_tie.sql): /messages and /context read a room by (topo,
// topo_tie, seq), /sync by stream_pos.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// selectPrevTopo is the highest topo of an event's stored prev_events
// (0 when none is stored).
const selectPrevTopo = `SELECT COALESCE(max(topo), 0) FROM events WHERE room_nid = $1 AND event_id = ANY($2)`

// receivedTopo is the topological position of an event received over
// federation: its depth, raised to one more than its highest stored
// prev_event's when the depth is not above it. Depth is the sender's
// claim; clamping keeps an event after every event it names as a
// predecessor (as the spec defines depth: the prev_events' maximum plus
// one), so a wrong depth cannot move an event before its own history.
// Events whose prev_events are not stored (outliers, backfill) keep their
// depth.
func receivedTopo(ctx context.Context, tx pgx.Tx, nid int64, ev *event.Event) (int64, error) {
	prev := ev.PrevEventIDs()
	if len(prev) == 0 {
		return ev.Depth(), nil
	}
	var top int64
	if err := tx.QueryRow(ctx, selectPrevTopo, nid, prev).Scan(&top); err != nil {
		return 0, fmt.Errorf("topological position of %s: %w", ev.EventID(), err)
	}
	if top < ev.Depth() {
		return ev.Depth(), nil
	}
	return min(top, math.MaxInt64-1) + 1, nil
}

// topoAbove is the topological position of an event whose prev events'
// highest position is prevTopo: its depth, or one above prevTopo when the
// depth is not (a local event built on a remote event whose depth was
// clamped by receivedTopo takes the spec's depth, one more than that
// event's claimed depth, which may lie far below it).
func topoAbove(prevTopo int64, ev *event.Event) int64 {
	return max(ev.Depth(), min(prevTopo, math.MaxInt64-1)+1)
}

// selectExtremitiesTopo is the highest topo of the extremities at seqs
// but one, the event being written at $3 (its row may not be there yet,
// or be an outlier's with its old position).
const selectExtremitiesTopo = `
SELECT COALESCE(max(topo), 0) FROM events WHERE room_nid = $1 AND seq = ANY($2) AND seq <> $3`

// extremitiesTopo is rooms.Head.Topo for the extremities at seqs, among
// which may be the event at seq being written with position topo.
func extremitiesTopo(ctx context.Context, tx pgx.Tx, nid int64, seqs []int64, seq, topo int64) (int64, error) {
	var top int64
	if err := tx.QueryRow(ctx, selectExtremitiesTopo, nid, seqs, seq).Scan(&top); err != nil {
		return 0, fmt.Errorf("topological position of the extremities: %w", err)
	}
	if slices.Contains(seqs, seq) {
		top = max(top, topo)
	}
	return top, nil
}

var _ rooms.TopologyReader = (*Rooms)(nil)

// topoColumns are storedColumns with the topological position last.
const topoColumns = `SELECT ` + storedList + `, e.topo, e.topo_tie` + storedFrom

const (
	// selectTopoBackward and selectTopoForward page through a room in
	// topological order (index events_room_topo_tie, sql/0024).
	selectTopoBackward = topoColumns + `
WHERE e.room_nid = $1 AND (e.topo, e.topo_tie, e.seq) <= ($2, $3, $4) AND ` + clientVisible + `
ORDER BY e.topo DESC, e.topo_tie DESC, e.seq DESC LIMIT $5`
	selectTopoForward = topoColumns + `
WHERE e.room_nid = $1 AND (e.topo, e.topo_tie, e.seq) > ($2, $3, $4) AND ` + clientVisible + `
ORDER BY e.topo, e.topo_tie, e.seq LIMIT $5`
	// selectTopoArrivedBy is the topologically latest event clients see
	// that arrived at or before seq: a walk down the topological index from
	// the top, short when seq is recent (a sync's prev_batch).
	selectTopoArrivedBy = `
SELECT e.topo, e.topo_tie, e.seq FROM events e WHERE e.room_nid = $1 AND e.seq <= $2 AND ` + clientVisible + `
ORDER BY e.topo DESC, e.topo_tie DESC, e.seq DESC LIMIT 1`
	// selectTopoArrivedLast is the latest event clients see that arrived
	// at or before seq, backfilled history aside (a walk down the primary
	// key): while the room's history is linear up to seq, it is also the
	// topologically latest.
	selectTopoArrivedLast = `
SELECT e.topo, e.topo_tie, e.seq FROM events e WHERE e.room_nid = $1 AND e.seq <= $2 AND e.stream_pos > 0 AND ` + clientVisible + `
ORDER BY e.seq DESC LIMIT 1`
	selectTopoArrivedAfter = `
SELECT e.topo, e.topo_tie, e.seq FROM events e WHERE e.room_nid = $1 AND e.seq > $2 AND ` + clientVisible + `
ORDER BY e.seq LIMIT 1`
	selectEventPos = `SELECT topo, topo_tie, seq FROM events WHERE room_nid = $1 AND seq = $2`
)

// HistoryPage implements rooms.TopologyReader.
func (r *Rooms) HistoryPage(ctx context.Context, room id.RoomID, from rooms.TopoPos, dir rooms.Direction, limit int) ([]rooms.TopoEvent, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	sql := selectTopoBackward
	if dir == rooms.Forward {
		sql = selectTopoForward
	}
	out, err := scanTopo(ctx, r.pool, room, e.version, sql, e.nid, from.Topo, from.Tie, from.Seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", room, err)
	}
	return out, nil
}

// scanTopo runs a topoColumns query (scanStored with the position).
func scanTopo(ctx context.Context, q querier, room id.RoomID, v roomversion.Version, sql string, args ...any) ([]rooms.TopoEvent, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rooms.TopoEvent
	for rows.Next() {
		var topo, tie int64
		se, err := scanStoredRow(rows, room, v, &topo, &tie)
		if err != nil {
			return nil, err
		}
		out = append(out, rooms.TopoEvent{StoredEvent: se, Topo: topo, Tie: tie})
	}
	return out, rows.Err()
}

// TopoPosOfSeq implements rooms.TopologyReader.
func (r *Rooms) TopoPosOfSeq(ctx context.Context, room id.RoomID, seq int64) (rooms.TopoPos, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return rooms.TopoPos{}, err
	}
	var p rooms.TopoPos
	// Up to the room's first fork (sql/0016's room_forks), every event
	// arrived after those it follows — no late event — so the latest
	// arrival is the topological latest: one primary-key lookup. History
	// backfilled before the room's first event is older than every event
	// that arrived. Past a fork, the topological index is walked down from
	// the top (selectTopoArrivedBy: as many rows as arrived after seq).
	if first, forked, err := r.ForkedFrom(ctx, room); err != nil {
		return p, err
	} else if !forked || seq < first {
		err := r.pool.QueryRow(ctx, selectTopoArrivedLast, e.nid, seq).Scan(&p.Topo, &p.Tie, &p.Seq)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return p, fmt.Errorf("topological position of %d in %s: %w", seq, room, err)
		}
	}
	err = r.pool.QueryRow(ctx, selectTopoArrivedBy, e.nid, seq).Scan(&p.Topo, &p.Tie, &p.Seq)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("topological position of %d in %s: %w", seq, room, err)
	}
	err = r.pool.QueryRow(ctx, selectTopoArrivedAfter, e.nid, seq).Scan(&p.Topo, &p.Tie, &p.Seq)
	switch {
	case err == nil:
		// Just before it.
		p.Seq--
		return p, nil
	case errors.Is(err, pgx.ErrNoRows):
		return rooms.TopoPos{Topo: math.MaxInt64, Tie: math.MaxInt64, Seq: math.MaxInt64}, nil
	default:
		return p, fmt.Errorf("topological position of %d in %s: %w", seq, room, err)
	}
}

// EventPos implements rooms.TopologyReader.
func (r *Rooms) EventPos(ctx context.Context, room id.RoomID, seq int64) (rooms.TopoPos, error) {
	var p rooms.TopoPos
	e, err := r.room(ctx, room)
	if err != nil {
		return p, err
	}
	err = r.pool.QueryRow(ctx, selectEventPos, e.nid, seq).Scan(&p.Topo, &p.Tie, &p.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, rooms.ErrEventNotFound
	}
	if err != nil {
		return p, fmt.Errorf("topological position of %d in %s: %w", seq, room, err)
	}
	return p, nil
}
