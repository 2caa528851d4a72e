package storage

// The topological order of a room's history (sql/0015_topological_order.sql):
// /messages and /context read a room by (topo, seq), /sync by stream_pos.

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/rooms/event"
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
