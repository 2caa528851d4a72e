package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

var _ rooms.BackfillStore = (*Rooms)(nil)

const (
	lockRoomForBackfill = `SELECT room_nid FROM rooms WHERE room_id = $1 FOR UPDATE`
	selectMinSeq        = `SELECT COALESCE(min(seq), 1) FROM events WHERE room_nid = $1`
	// selectTimelineTopos is the topological position of the events among
	// ids that are in the room's timeline.
	selectTimelineTopos = `SELECT event_id, topo FROM events WHERE room_nid = $1 AND event_id = ANY($2) AND NOT outlier`
	// insertBackfilled stores history fetched from other servers:
	// timeline events (clients see them in /messages) with the state
	// before them when known (else snapshot -1) and stream position 0,
	// so that no /sync ever reports them as new and no outbound queue
	// sends them. An event the store holds already is left as it is.
	insertBackfilled = `
INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, state_key, sender, membership,
                    origin_ts, snapshot_nid, replaces_seq, event_json, topo)
SELECT $1, u.seq, 0, u.event_id, u.event_type, u.state_key, u.sender, u.membership, u.origin_ts, u.snap, u.replaces, u.event_json, u.topo
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bytea[], $10::bigint[], $11::bigint[], $12::bigint[])
     AS u(seq, event_id, event_type, state_key, sender, membership, origin_ts, event_json, topo, snap, replaces)
ON CONFLICT (event_id) DO NOTHING`
	// selectHeldSeqs is the sequence number of the events among ids the
	// room holds.
	selectHeldSeqs = `SELECT event_id, seq FROM events WHERE room_nid = $1 AND event_id = ANY($2)`
	// promoteBackfilled moves outliers that backfill reached (the state
	// and auth chain a room was joined with, fetched auth events) into the
	// timeline where their depth puts them, as history: stream position 0
	// like every backfilled event, so no /sync reports them as new. One
	// stored without state takes the state backfill found before it.
	promoteBackfilled = `
UPDATE events e SET outlier = FALSE, stream_pos = 0, topo = u.topo,
    snapshot_nid = CASE WHEN e.snapshot_nid < 0 THEN u.snap ELSE e.snapshot_nid END,
    replaces_seq = COALESCE(e.replaces_seq, u.replaces)
FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(event_id, topo, snap, replaces)
WHERE e.room_nid = $1 AND e.event_id = u.event_id AND e.outlier AND NOT e.soft_failed AND e.rejected IS NULL`
)

// InsertBackfilled implements rooms.BackfillStore: evs, newest first, get
// the sequence numbers below the room's lowest and their depth as
// topological position (sql/0015), raised above their prev events in the
// timeline as a received event's is (topological.go) and capped at
// maxTopo, so that /messages pages into them before the event whose hole
// they fill. An outlier among them joins the timeline in its row. The
// state before each, when given, is stored as its snapshot, a delta on the
// previous one's where it can be (storage/state.go), as the persist path
// does. The room's current state, memberships and forward extremities do
// not change.
func (r *Rooms) InsertBackfilled(ctx context.Context, room id.RoomID, bevs []rooms.BackfilledEvent, maxTopo int64) (int, error) {
	if len(bevs) == 0 {
		return 0, nil
	}
	evs := make([]*event.Event, len(bevs))
	for i, b := range bevs {
		evs[i] = b.Event
	}
	var inserted int
	learned := map[auth.StateKey]int64{}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var nid, low int64
		err := tx.QueryRow(ctx, lockRoomForBackfill, room).Scan(&nid)
		if errors.Is(err, pgx.ErrNoRows) {
			return rooms.ErrRoomNotFound
		}
		if err != nil {
			return fmt.Errorf("lock room %s: %w", room, err)
		}
		if err := tx.QueryRow(ctx, selectMinSeq, nid).Scan(&low); err != nil {
			return fmt.Errorf("lowest sequence of %s: %w", room, err)
		}
		// Sequence number 0 stays unused: the snapshots' readers take it
		// for "none" (state_views.go).
		low = min(low, 0)
		topos, err := backfilledTopos(ctx, tx, nid, evs, maxTopo)
		if err != nil {
			return fmt.Errorf("topological positions of backfilled events of %s: %w", room, err)
		}
		n := len(evs)
		seqs, ts := make([]int64, n), make([]int64, n)
		ids, types, senders := make([]string, n), make([]string, n), make([]string, n)
		keys, members := make([]*string, n), make([]*string, n)
		raws := make([][]byte, n)
		for i, ev := range evs {
			seqs[i] = low - 1 - int64(i)
			ids[i], types[i], senders[i] = string(ev.EventID()), ev.Type(), string(ev.Sender())
			keys[i] = ev.StateKey()
			if ev.Type() == auth.TypeMember && ev.IsState() {
				m := ev.Membership()
				members[i] = &m
			}
			ts[i], raws[i] = ev.OriginServerTS(), ev.Raw()
		}
		seqOf, err := heldSeqs(ctx, tx, nid, bevs, seqs)
		if err != nil {
			return fmt.Errorf("held events of %s: %w", room, err)
		}
		snaps, err := r.backfilledSnapshots(ctx, tx, learned, nid, bevs, seqOf)
		if err != nil {
			return fmt.Errorf("state of backfilled events of %s: %w", room, err)
		}
		replaces, err := replacedSeqs(ctx, tx, nid, bevs, seqOf)
		if err != nil {
			return fmt.Errorf("state replaced by backfilled events of %s: %w", room, err)
		}
		tag, err := tx.Exec(ctx, insertBackfilled, nid, seqs, ids, types, keys, senders, members, ts, raws, topos, snaps, replaces)
		if err != nil {
			return fmt.Errorf("insert backfilled events of %s: %w", room, err)
		}
		inserted = int(tag.RowsAffected())
		if inserted == n {
			return nil
		}
		tag, err = tx.Exec(ctx, promoteBackfilled, nid, ids, topos, snaps, replaces)
		if err != nil {
			return fmt.Errorf("promote backfilled outliers of %s: %w", room, err)
		}
		inserted += int(tag.RowsAffected())
		return nil
	})
	if err == nil {
		r.learn(learned)
	}
	return inserted, err
}

// backfilledSnapshots records the state before each of bevs (newest
// first; seqOf has the sequence number of each, held or about to be
// taken) and returns the snapshot of each, unknownSnapshot where none is
// given. The oldest gets a full snapshot, each newer one a delta on the one
// before it when its state only adds or replaces entries.
func (r *Rooms) backfilledSnapshots(ctx context.Context, tx pgx.Tx, learned map[auth.StateKey]int64, nid int64, bevs []rooms.BackfilledEvent, seqOf map[id.EventID]int64) ([]int64, error) {
	out := make([]int64, len(bevs))
	known := false
	for i, b := range bevs {
		out[i] = unknownSnapshot
		known = known || b.StateBefore != nil
	}
	if !known {
		return out, nil
	}
	base, baseState := int64(unknownSnapshot), rooms.State(nil)
	for i := len(bevs) - 1; i >= 0; i-- {
		st := bevs[i].StateBefore
		if st == nil {
			continue
		}
		snap, err := r.snapshotFrom(ctx, tx, learned, nid, base, baseState, st, seqOf)
		if err != nil {
			return nil, err
		}
		out[i], base, baseState = snap, snap, st
	}
	return out, nil
}

// heldSeqs is the sequence number of each of bevs (newest first; seqs are
// the ones they are about to take): an event the room holds already (an
// outlier backfill reached) keeps its own.
func heldSeqs(ctx context.Context, tx pgx.Tx, nid int64, bevs []rooms.BackfilledEvent, seqs []int64) (map[id.EventID]int64, error) {
	seqOf := make(map[id.EventID]int64, len(bevs))
	ids := make([]id.EventID, len(bevs))
	for i, b := range bevs {
		seqOf[b.Event.EventID()], ids[i] = seqs[i], b.Event.EventID()
	}
	held, err := seqsOfEvents(ctx, tx, nid, ids)
	if err != nil {
		return nil, err
	}
	maps.Copy(seqOf, held)
	return seqOf, nil
}

// seqsOfEvents is the sequence number of the events among ids the room
// holds.
func seqsOfEvents(ctx context.Context, tx pgx.Tx, nid int64, ids []id.EventID) (map[id.EventID]int64, error) {
	out := make(map[id.EventID]int64, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	strs := make([]string, len(ids))
	for i, eid := range ids {
		strs[i] = string(eid)
	}
	rows, err := tx.Query(ctx, selectHeldSeqs, nid, strs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var eid string
		var seq int64
		if err := rows.Scan(&eid, &seq); err != nil {
			return nil, err
		}
		out[id.EventID(eid)] = seq
	}
	return out, rows.Err()
}

// replacedSeqs is, for each of bevs that is a state event with a known
// state before it, the sequence number of the event it replaced (its
// clients' unsigned.prev_content), nil otherwise: from the batch (seqOf)
// or from the events the room holds (the state before the batch was
// fetched and stored before it).
func replacedSeqs(ctx context.Context, tx pgx.Tx, nid int64, bevs []rooms.BackfilledEvent, seqOf map[id.EventID]int64) ([]*int64, error) {
	replaced := make([]id.EventID, len(bevs))
	var elsewhere []id.EventID
	for i, b := range bevs {
		if b.StateBefore == nil || !b.Event.IsState() {
			continue
		}
		if p := b.StateBefore.Get(b.Event.Type(), *b.Event.StateKey()); p != nil {
			replaced[i] = p.EventID()
			if _, ok := seqOf[p.EventID()]; !ok {
				elsewhere = append(elsewhere, p.EventID())
			}
		}
	}
	held, err := seqsOfEvents(ctx, tx, nid, elsewhere)
	if err != nil {
		return nil, err
	}
	out := make([]*int64, len(bevs))
	for i, p := range replaced {
		if p == "" {
			continue
		}
		if seq, ok := seqOf[p]; ok {
			out[i] = &seq
		} else if seq, ok := held[p]; ok {
			out[i] = &seq
		}
	}
	return out, nil
}

// backfilledTopos is the topological position of each of evs (newest
// first): its depth, at least one more than its prev events' (in evs or in
// the timeline), at most maxTopo (at least 0). The cap wins: the events
// fill a hole below an event at maxTopo+1, and a page that reached that
// event must find them below it, whatever depth their sender claimed.
func backfilledTopos(ctx context.Context, tx pgx.Tx, nid int64, evs []*event.Event, maxTopo int64) ([]int64, error) {
	in := make(map[id.EventID]bool, len(evs))
	for _, ev := range evs {
		in[ev.EventID()] = true
	}
	var outside []string
	for _, ev := range evs {
		for _, p := range ev.PrevEventIDs() {
			if !in[p] {
				outside = append(outside, string(p))
			}
		}
	}
	topo := map[id.EventID]int64{}
	if len(outside) > 0 {
		rows, err := tx.Query(ctx, selectTimelineTopos, nid, outside)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var eid string
			var t int64
			if err := rows.Scan(&eid, &t); err != nil {
				rows.Close()
				return nil, err
			}
			topo[id.EventID(eid)] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	maxTopo = max(maxTopo, 0)
	out := make([]int64, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		t := max(ev.Depth(), 0)
		for _, p := range ev.PrevEventIDs() {
			if pt, ok := topo[p]; ok && pt >= t {
				t = min(pt, math.MaxInt64-1) + 1
			}
		}
		out[i] = min(t, maxTopo)
		topo[ev.EventID()] = out[i]
	}
	return out, nil
}
