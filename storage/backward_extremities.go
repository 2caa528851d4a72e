package storage

// Backward extremities (sql/0023): timeline events whose prev_events are
// not all in the timeline, the holes /messages fills with GET /backfill
// (rooms/backfill_holes.go).

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/id"
)

const (
	// selectMissingPrevs returns the (event, prev event) pairs whose prev
	// event is not in the room's timeline (unknown, or an outlier), with
	// what backward_extremities says of the event.
	selectMissingPrevs = `
SELECT c.event_id, c.prev_id, b.event_id IS NOT NULL, b.exhausted_ts IS NOT NULL
FROM unnest($2::text[], $3::text[]) AS c(event_id, prev_id)
LEFT JOIN backward_extremities b ON b.room_nid = $1 AND b.event_id = c.event_id
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = c.prev_id AND e.room_nid = $1 AND NOT e.outlier)`
	insertBackwardExtremities = `
INSERT INTO backward_extremities (room_nid, event_id, found_ts)
SELECT $1, u, $3 FROM unnest($2::text[]) AS u
ON CONFLICT DO NOTHING`
	deleteBackwardExtremity  = `DELETE FROM backward_extremities WHERE room_nid = $1 AND event_id = $2`
	exhaustBackwardExtremity = `
INSERT INTO backward_extremities (room_nid, event_id, found_ts, exhausted_ts) VALUES ($1, $2, $3, $3)
ON CONFLICT (room_nid, event_id) DO UPDATE SET exhausted_ts = EXCLUDED.exhausted_ts`
)

// BackwardExtremities implements rooms.BackfillStore.
func (r *Rooms) BackwardExtremities(ctx context.Context, room id.RoomID, prevs map[id.EventID][]id.EventID) (map[id.EventID][]id.EventID, error) {
	if len(prevs) == 0 {
		return nil, nil
	}
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	var evIDs, prevIDs []string
	for ev, ps := range prevs {
		for _, p := range ps {
			evIDs, prevIDs = append(evIDs, string(ev)), append(prevIDs, string(p))
		}
	}
	if len(evIDs) == 0 {
		return nil, nil
	}
	rows, err := r.pool.Query(ctx, selectMissingPrevs, e.nid, evIDs, prevIDs)
	if err != nil {
		return nil, fmt.Errorf("missing prev events in %s: %w", room, err)
	}
	defer rows.Close()
	out := map[id.EventID][]id.EventID{}
	var fresh []string
	for rows.Next() {
		var ev, prev string
		var recorded, exhausted bool
		if err := rows.Scan(&ev, &prev, &recorded, &exhausted); err != nil {
			return nil, fmt.Errorf("missing prev events in %s: %w", room, err)
		}
		if exhausted {
			continue
		}
		eid := id.EventID(ev)
		if _, seen := out[eid]; !seen && !recorded {
			fresh = append(fresh, ev)
		}
		out[eid] = append(out[eid], id.EventID(prev))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("missing prev events in %s: %w", room, err)
	}
	if len(fresh) > 0 {
		if _, err := r.pool.Exec(ctx, insertBackwardExtremities, e.nid, fresh, time.Now().UnixMilli()); err != nil {
			return nil, fmt.Errorf("record backward extremities of %s: %w", room, err)
		}
	}
	return out, nil
}

// SettleBackwardExtremity implements rooms.BackfillStore.
func (r *Rooms) SettleBackwardExtremity(ctx context.Context, room id.RoomID, ev id.EventID, exhausted bool) error {
	e, err := r.room(ctx, room)
	if err != nil {
		return err
	}
	if exhausted {
		_, err = r.pool.Exec(ctx, exhaustBackwardExtremity, e.nid, string(ev), time.Now().UnixMilli())
	} else {
		_, err = r.pool.Exec(ctx, deleteBackwardExtremity, e.nid, string(ev))
	}
	if err != nil {
		return fmt.Errorf("settle backward extremity %s of %s: %w", ev, room, err)
	}
	return nil
}
