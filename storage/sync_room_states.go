package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/syncer"
)

var _ syncer.RoomStatesReader = (*Sync)(nil)

const (
	// roomStatesInput is the rooms of a RoomStates call: $1 ids, $2
	// positions, $3 no current state, $4 lazy, $5 the members read of a
	// lazy room (a JSON array of user ids per room). Each room's rows are
	// read by its own index descents (LATERAL), whatever the size of the
	// tables: a join of all the rooms at once was planned as a hash join
	// over every event.
	roomStatesInput = `
WITH q AS (
    SELECT r.room_nid, r.room_id, r.room_version, i.after, i.skip, i.lazy, i.members
    FROM unnest($1::text[], $2::bigint[], $3::bool[], $4::bool[], $5::jsonb[]) AS i(room_id, after, skip, lazy, members)
    JOIN rooms r ON r.room_id = i.room_id
)`
	// selectRoomsCurrentState is the current state of the rooms: every
	// entry of those not lazy; of the lazy ones the entries that are not
	// member events and the asked members' (by key). The keys that are not
	// member events are found as the keys of the room's state events of
	// other types (two ranges of events_room_state): told apart in
	// current_state instead, every member's key was looked up, and the
	// read grew with the room's membership.
	selectRoomsCurrentState = roomStatesInput + `
SELECT q.room_id, q.room_version, x.event_json, x.redacted, x.event_id
FROM q CROSS JOIN LATERAL (
    SELECT e.event_json, e.redacted_by IS NOT NULL AS redacted, e.event_id
    FROM current_state c
    JOIN events e ON e.room_nid = c.room_nid AND e.seq = c.seq
    WHERE c.room_nid = q.room_nid AND NOT q.lazy
    UNION ALL
    SELECT e.event_json, e.redacted_by IS NOT NULL, e.event_id
    FROM (
        SELECT s.event_type, s.state_key FROM events s
        WHERE s.room_nid = q.room_nid AND s.state_key IS NOT NULL AND s.event_type < 'm.room.member'
        UNION
        SELECT s.event_type, s.state_key FROM events s
        WHERE s.room_nid = q.room_nid AND s.state_key IS NOT NULL AND s.event_type > 'm.room.member') t
    JOIN state_keys k ON k.event_type = t.event_type AND k.state_key = t.state_key
    JOIN current_state c ON c.room_nid = q.room_nid AND c.key_nid = k.key_nid
    JOIN events e ON e.room_nid = c.room_nid AND e.seq = c.seq
    WHERE q.lazy
    UNION ALL
    SELECT e.event_json, e.redacted_by IS NOT NULL, e.event_id
    FROM jsonb_array_elements_text(q.members) AS u(user_id)
    JOIN state_keys k ON k.event_type = 'm.room.member' AND k.state_key = u.user_id
    JOIN current_state c ON c.room_nid = q.room_nid AND c.key_nid = k.key_nid
    JOIN events e ON e.room_nid = c.room_nid AND e.seq = c.seq
    WHERE q.lazy) x
WHERE NOT q.skip`
	// selectRoomsStateDeltas is StateDeltas of every room after its
	// position (restricted to the same keys), each change with the events
	// it names; the rows of a room in any order (a sort of all of them
	// spilled to disk), delta_id orders them. OFFSET 0 keeps the
	// subquery per room (flattened, it was planned as a hash join over
	// every room's deltas).
	selectRoomsStateDeltas = roomStatesInput + `
SELECT q.room_id, q.room_version, x.*
FROM q CROSS JOIN LATERAL (
    SELECT d.delta_id, d.event_type, d.state_key, d.stream_pos, d.seq, d.prev_seq,
           n.event_json, n.redacted_by IS NOT NULL, n.event_id, o.event_json, o.redacted_by IS NOT NULL, o.event_id
    FROM (
        SELECT d.delta_id, d.room_nid, d.stream_pos, COALESCE(d.seq, 0) AS seq, COALESCE(d.prev_seq, 0) AS prev_seq,
               (SELECT k.event_type FROM state_keys k WHERE k.key_nid = d.key_nid) AS event_type,
               (SELECT k.state_key FROM state_keys k WHERE k.key_nid = d.key_nid) AS state_key
        FROM room_state_deltas d
        WHERE d.room_nid = q.room_nid AND d.stream_pos > q.after
        OFFSET 0) d
    LEFT JOIN events n ON n.room_nid = d.room_nid AND n.seq = d.seq
    LEFT JOIN events o ON o.room_nid = d.room_nid AND o.seq = d.prev_seq
    WHERE NOT q.lazy OR d.event_type <> 'm.room.member' OR d.state_key IN (SELECT jsonb_array_elements_text(q.members))) x`
)

// noJIT turns PostgreSQL's JIT compilation off for the rest of a batch
// (its implicit transaction; the session's setting is back after it). A
// statement over hundreds of rooms is estimated above jit_above_cost
// (100,000 by default) although each room costs a few index descents, and
// compiling it took longer than running it: RoomStates of 500 rooms ran
// in 30-280 ms and took 1.1-1.3 s with JIT (load 15-20).
const noJIT = `SELECT set_config('jit', 'off', true)`

// RoomStates implements syncer.RoomStatesReader: the current state and
// the state history of every room in one round trip of two statements
// (the current state first, so that a change committed in between is in
// the history). The current state is current_state, the table the
// history's deltas are written from.
func (s *Sync) RoomStates(ctx context.Context, reqs []syncer.RoomStatesRequest) (map[id.RoomID]*syncer.RoomStates, error) {
	out := make(map[id.RoomID]*syncer.RoomStates, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	ids := make([]string, len(reqs))
	afters := make([]int64, len(reqs))
	skip := make([]bool, len(reqs))
	lazy := make([]bool, len(reqs))
	members := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i], afters[i], skip[i], lazy[i], members[i] = string(r.Room), r.After, r.NoCurrent, r.Lazy, "[]"
		out[r.Room] = &syncer.RoomStates{Events: map[int64]*rooms.StoredEvent{}}
		if !r.NoCurrent {
			out[r.Room].Current = rooms.State{}
		}
		if r.Lazy && len(r.Members) > 0 {
			m, err := json.Marshal(r.Members)
			if err != nil {
				return nil, err
			}
			members[i] = string(m)
		}
	}
	args := []any{ids, afters, skip, lazy, members}

	// Rows are parsed after the round trip, several at a time (as
	// PrefetchRooms does).
	type stateRow struct {
		room    id.RoomID
		v       roomversion.Version
		raw     []byte
		redact  bool
		eventID id.EventID
		seq     int64 // 0: a current state entry
		ev      *event.Event
	}
	var parse []*stateRow
	version := func(room id.RoomID, ver string) (roomversion.Version, error) {
		v, ok := roomversion.Lookup(roomversion.ID(ver))
		if !ok {
			return v, fmt.Errorf("room %s has unknown version %q", room, ver)
		}
		return v, nil
	}
	batch := &pgx.Batch{}
	batch.Queue(noJIT)
	batch.Queue(selectRoomsCurrentState, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			r := &stateRow{}
			var ver string
			if err := rows.Scan(&r.room, &ver, &r.raw, &r.redact, &r.eventID); err != nil {
				return err
			}
			var err error
			if r.v, err = version(r.room, ver); err != nil {
				return err
			}
			parse = append(parse, r)
		}
		return rows.Err()
	})
	type deltaRow struct {
		syncer.StateDelta
		id int64
	}
	deltas := map[id.RoomID][]deltaRow{}
	batch.Queue(selectRoomsStateDeltas, args...).Query(func(rows pgx.Rows) error {
		seen := map[id.RoomID]map[int64]bool{}
		for rows.Next() {
			var (
				room                 id.RoomID
				ver                  string
				d                    deltaRow
				newRaw, oldRaw       []byte
				newRedact, oldRedact *bool
				newID, oldID         *id.EventID
			)
			if err := rows.Scan(&room, &ver, &d.id, &d.Key.Type, &d.Key.StateKey, &d.StreamPos, &d.Seq, &d.PrevSeq,
				&newRaw, &newRedact, &newID, &oldRaw, &oldRedact, &oldID); err != nil {
				return err
			}
			v, err := version(room, ver)
			if err != nil {
				return err
			}
			deltas[room] = append(deltas[room], d)
			if seen[room] == nil {
				seen[room] = map[int64]bool{}
			}
			for _, e := range []struct {
				seq    int64
				raw    []byte
				redact *bool
				id     *id.EventID
			}{{d.Seq, newRaw, newRedact, newID}, {d.PrevSeq, oldRaw, oldRedact, oldID}} {
				if e.seq == 0 || e.raw == nil || seen[room][e.seq] {
					continue
				}
				seen[room][e.seq] = true
				parse = append(parse, &stateRow{room: room, v: v, raw: e.raw, redact: *e.redact, eventID: *e.id, seq: e.seq})
			}
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("state of %d rooms: %w", len(reqs), err)
	}

	if err := parseAll(len(parse), func(i int) error {
		r := parse[i]
		ev, err := event.ParseStored(r.v, r.raw, r.eventID)
		if err != nil {
			return fmt.Errorf("stored event %s of %s does not parse: %w", r.eventID, r.room, err)
		}
		if r.redact {
			ev = ev.Redacted()
		}
		r.ev = ev
		return nil
	}); err != nil {
		return nil, fmt.Errorf("state of %d rooms: %w", len(reqs), err)
	}
	for room, ds := range deltas {
		// In the order they happened, as StateDeltas reads them.
		slices.SortFunc(ds, func(a, b deltaRow) int { return cmp.Or(cmp.Compare(a.StreamPos, b.StreamPos), cmp.Compare(a.id, b.id)) })
		rs := out[room]
		for _, d := range ds {
			rs.Deltas = append(rs.Deltas, d.StateDelta)
		}
	}
	for _, r := range parse {
		rs := out[r.room]
		if r.seq == 0 {
			rs.Current[auth.StateKey{Type: r.ev.Type(), StateKey: *r.ev.StateKey()}] = r.ev
		} else {
			rs.Events[r.seq] = &rooms.StoredEvent{Event: r.ev, RoomID: r.room, Seq: r.seq}
		}
	}
	return out, nil
}

// parseAll runs parse(0 … n-1) on prefetchParsers goroutines; the first
// error wins.
func parseAll(n int, parse func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(prefetchParsers, n) {
		wg.Go(func() {
			for i := range next {
				if err := parse(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
