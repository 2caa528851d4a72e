package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

var _ rooms.ServeStore = (*Rooms)(nil)

// servable is the condition on events e of the rows other servers may be
// served: outliers are part of the room's graph, soft-failed and rejected
// events are not (sql/0008).
const servable = `NOT e.soft_failed AND e.rejected IS NULL`

const (
	selectServedByID = `
SELECT e.seq, e.outlier, e.event_json, e.redacted_by IS NOT NULL FROM events e
WHERE e.room_nid = $1 AND e.event_id = ANY($2) AND ` + servable
	selectEventRoom = `
SELECT r.room_id FROM events e JOIN rooms r ON r.room_nid = e.room_nid
WHERE e.event_id = $1 AND ` + servable
	selectSnapshotOfEvent = `
SELECT e.snapshot_nid FROM events e WHERE e.room_nid = $1 AND e.event_id = $2 AND ` + servable
	selectSnapshotsOfEvents = `
SELECT e.event_id, e.snapshot_nid FROM events e
WHERE e.room_nid = $1 AND e.event_id = ANY($2) AND ` + servable
	// selectViewKeys interns the state keys a server's view reads: the
	// room's history visibility and the member keys of the server's users
	// that ever had a member event in the room (index events_room_state).
	selectViewKeys = `
SELECT k.key_nid, k.event_type FROM state_keys k
WHERE (k.event_type = 'm.room.history_visibility' AND k.state_key = '')
   OR (k.event_type = 'm.room.member' AND k.state_key IN (
        SELECT DISTINCT e.state_key FROM events e
        WHERE e.room_nid = $1 AND e.event_type = 'm.room.member' AND e.state_key IS NOT NULL
          AND right(e.state_key, $3) = $2))`
	// selectViewEntries resolves, for each snapshot, the entries of the
	// given keys (the nearest delta that sets a key wins) and reads the
	// events they point at.
	selectViewEntries = `
WITH RECURSIVE chain AS (
    SELECT snapshot_nid AS origin, parent_nid, key_nids, seqs, 0 AS depth
    FROM state_snapshots WHERE snapshot_nid = ANY($2)
    UNION ALL
    SELECT c.origin, s.parent_nid, s.key_nids, s.seqs, c.depth + 1
    FROM state_snapshots s JOIN chain c ON s.snapshot_nid = c.parent_nid
), entries AS (
    SELECT DISTINCT ON (c.origin, u.k) c.origin, u.s
    FROM chain c, unnest(c.key_nids, c.seqs) AS u(k, s)
    WHERE u.k = ANY($3)
    ORDER BY c.origin, u.k, c.depth
)
SELECT x.origin, e.event_type, e.membership,
       CASE WHEN e.event_type = 'm.room.history_visibility' THEN e.event_json END
FROM entries x JOIN events e ON e.room_nid = $1 AND e.seq = x.s`
)

// EventsByID implements rooms.ServeStore.
func (r *Rooms) EventsByID(ctx context.Context, room id.RoomID, ids []id.EventID) ([]*rooms.ServedEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, selectServedByID, e.nid, ids)
	if err != nil {
		return nil, fmt.Errorf("events of %s by id: %w", room, err)
	}
	defer rows.Close()
	var out []*rooms.ServedEvent
	for rows.Next() {
		var (
			se       rooms.ServedEvent
			raw      []byte
			redacted bool
		)
		if err := rows.Scan(&se.Seq, &se.Outlier, &raw, &redacted); err != nil {
			return nil, fmt.Errorf("events of %s by id: %w", room, err)
		}
		if se.Event, err = event.Parse(e.version, raw); err != nil {
			return nil, fmt.Errorf("stored event does not parse: %w", err)
		}
		if redacted {
			se.Event = se.Event.Redacted()
		}
		out = append(out, &se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of %s by id: %w", room, err)
	}
	return out, nil
}

// EventRoom implements rooms.ServeStore.
func (r *Rooms) EventRoom(ctx context.Context, eventID id.EventID) (id.RoomID, error) {
	var room id.RoomID
	err := r.pool.QueryRow(ctx, selectEventRoom, eventID).Scan(&room)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", rooms.ErrEventNotFound
	}
	if err != nil {
		return "", fmt.Errorf("room of %s: %w", eventID, err)
	}
	return room, nil
}

// StateBeforeEvent implements rooms.ServeStore.
func (r *Rooms) StateBeforeEvent(ctx context.Context, room id.RoomID, eventID id.EventID) (rooms.State, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	var snap int64
	err = r.pool.QueryRow(ctx, selectSnapshotOfEvent, e.nid, eventID).Scan(&snap)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && snap < 0) {
		return nil, rooms.ErrEventNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("state before %s: %w", eventID, err)
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
		return nil, fmt.Errorf("state before %s: %w", eventID, err)
	}
	st := make(rooms.State, len(evs))
	for _, ev := range evs {
		st[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	}
	return st, nil
}

// ServerViews implements rooms.ServeStore: three queries whatever the
// number of events (their snapshots, the keys to look at, the entries).
func (r *Rooms) ServerViews(ctx context.Context, room id.RoomID, server id.ServerName, ids []id.EventID) (map[id.EventID]rooms.ServerView, error) {
	out := map[id.EventID]rooms.ServerView{}
	if len(ids) == 0 {
		return out, nil
	}
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, selectSnapshotsOfEvents, e.nid, ids)
	if err != nil {
		return nil, fmt.Errorf("snapshots of events in %s: %w", room, err)
	}
	bySnap := map[int64][]id.EventID{}
	var snaps []int64
	for rows.Next() {
		var ev id.EventID
		var snap int64
		if err := rows.Scan(&ev, &snap); err != nil {
			rows.Close()
			return nil, fmt.Errorf("snapshots of events in %s: %w", room, err)
		}
		if snap < 0 {
			out[ev] = rooms.ServerView{}
			continue
		}
		if _, ok := bySnap[snap]; !ok {
			snaps = append(snaps, snap)
		}
		bySnap[snap] = append(bySnap[snap], ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshots of events in %s: %w", room, err)
	}
	if len(snaps) == 0 {
		return out, nil
	}
	suffix := ":" + string(server)
	keyRows, err := r.pool.Query(ctx, selectViewKeys, e.nid, suffix, len([]rune(suffix)))
	if err != nil {
		return nil, fmt.Errorf("view keys of %s in %s: %w", server, room, err)
	}
	keys, err := pgx.CollectRows(keyRows, func(row pgx.CollectableRow) (int64, error) {
		var k int64
		var typ string
		err := row.Scan(&k, &typ)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("view keys of %s in %s: %w", server, room, err)
	}
	views := make(map[int64]*rooms.ServerView, len(snaps))
	for _, s := range snaps {
		views[s] = &rooms.ServerView{Known: true}
	}
	if len(keys) > 0 {
		rows, err := r.pool.Query(ctx, selectViewEntries, e.nid, snaps, keys)
		if err != nil {
			return nil, fmt.Errorf("views of %s in %s: %w", server, room, err)
		}
		for rows.Next() {
			var (
				snap       int64
				typ        string
				membership *string
				raw        []byte
			)
			if err := rows.Scan(&snap, &typ, &membership, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("views of %s in %s: %w", server, room, err)
			}
			v := views[snap]
			switch {
			case typ == auth.TypeMember && membership != nil:
				v.Memberships = append(v.Memberships, *membership)
			case raw != nil:
				var hv struct {
					Content struct {
						HV string `json:"history_visibility"`
					} `json:"content"`
				}
				// A visibility that does not parse counts as unset.
				if json.Unmarshal(raw, &hv) == nil {
					v.HistoryVisibility = hv.Content.HV
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("views of %s in %s: %w", server, room, err)
		}
	}
	for snap, evs := range bySnap {
		for _, ev := range evs {
			out[ev] = *views[snap]
		}
	}
	return out, nil
}
