package storage

// Events received over federation (sql/0008_remote_events.sql): outliers,
// soft-failed and rejected events, and appends whose state before is not
// simply the room's current state (a fork of the room graph).

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

var _ rooms.RemoteStore = (*Rooms)(nil)

// unknownSnapshot is the snapshot_nid of an event whose state before is
// not stored (an outlier, a rejected event).
const unknownSnapshot = -1

const (
	selectKnownEvents = `
SELECT e.event_json, e.redacted_by IS NOT NULL, e.seq, e.outlier, e.soft_failed, COALESCE(e.rejected, ''),
       e.snapshot_nid >= 0
FROM events e WHERE e.room_nid = $1 AND e.event_id = ANY($2)`
	selectSnapshotByID = `SELECT snapshot_nid FROM events WHERE room_nid = $1 AND event_id = $2`
	selectSeqsByID     = `SELECT event_id, seq FROM events WHERE room_nid = $1 AND event_id = ANY($2)`
	selectExistingIDs  = `SELECT event_id FROM events WHERE event_id = ANY($1)`
	selectOutlierSeq   = `SELECT seq, outlier FROM events WHERE room_nid = $1 AND event_id = $2`
	// updateOutlierRow moves an outlier into the graph with a new stream
	// position ($8), reserved last as insertRemoteRows does.
	updateOutlierRow = `
UPDATE events SET outlier = FALSE, soft_failed = $3, rejected = $4, snapshot_nid = $5, replaces_seq = $6,
    stream_pos = $8, topo = $7
WHERE room_nid = $1 AND seq = $2 RETURNING stream_pos`
	lockRoomOnly       = `SELECT room_nid, room_version, last_seq, snapshot_nid FROM rooms WHERE room_id = $1 FOR UPDATE`
	updateLastSeq      = `UPDATE rooms SET last_seq = $2 WHERE room_nid = $1`
	deleteCurrentState = `DELETE FROM current_state WHERE room_nid = $1 AND key_nid = ANY($2)`
	upsertStateRows    = `
INSERT INTO current_state (room_nid, key_nid, seq) SELECT $1, k, s FROM unnest($2::bigint[], $3::bigint[]) AS u(k, s)
ON CONFLICT (room_nid, key_nid) DO UPDATE SET seq = EXCLUDED.seq`
	// insertRemoteEvents is insertEvents with the markers, at the stream
	// positions reserved for the rows ($2, in row order).
	insertRemoteEvents = `
INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, state_key, sender, membership,
                    origin_ts, snapshot_nid, replaces_seq, event_json, outlier, soft_failed, rejected, topo)
SELECT $1, u.seq, u.pos, u.event_id, u.event_type, u.state_key, u.sender, u.membership,
       u.origin_ts, u.snapshot_nid, u.replaces_seq, u.event_json, u.outlier, u.soft_failed, u.rejected, u.topo
FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::bigint[], $11::bigint[], $12::bytea[], $13::boolean[], $14::boolean[], $15::text[],
            $16::bigint[])
     AS u(pos, seq, event_id, event_type, state_key, sender, membership,
          origin_ts, snapshot_nid, replaces_seq, event_json, outlier, soft_failed, rejected, topo)
RETURNING seq, stream_pos`
)

// KnownEvents implements rooms.RemoteStore. An unknown room holds no
// events.
func (r *Rooms) KnownEvents(ctx context.Context, room id.RoomID, ids []id.EventID) (map[id.EventID]*rooms.KnownEvent, error) {
	out := map[id.EventID]*rooms.KnownEvent{}
	if len(ids) == 0 {
		return out, nil
	}
	e, err := r.room(ctx, room)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, selectKnownEvents, e.nid, ids)
	if err != nil {
		return nil, fmt.Errorf("known events of %s: %w", room, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			raw      []byte
			redacted bool
			k        rooms.KnownEvent
		)
		if err := rows.Scan(&raw, &redacted, &k.Seq, &k.Outlier, &k.SoftFailed, &k.Rejected, &k.StateKnown); err != nil {
			return nil, fmt.Errorf("known events of %s: %w", room, err)
		}
		if k.Event, err = event.Parse(e.version, raw); err != nil {
			return nil, fmt.Errorf("stored event does not parse: %w", err)
		}
		if redacted {
			k.Event = k.Event.Redacted()
		}
		out[k.Event.EventID()] = &k
	}
	return out, rows.Err()
}

const selectRedactions = `
SELECT e.event_json FROM events e
WHERE e.room_nid = $1 AND e.event_type = 'm.room.redaction' AND ` + clientVisible

// RedactionsOf implements rooms.RemoteStore. Redactions are few per room;
// their target is read from the parsed event (top level or, from room
// version 11, content).
func (r *Rooms) RedactionsOf(ctx context.Context, room id.RoomID, target id.EventID) ([]*event.Event, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	evs, err := scanEvents(ctx, r.pool, e.version, `SELECT event_json, FALSE FROM (`+selectRedactions+`) x`, e.nid)
	if err != nil {
		return nil, fmt.Errorf("redactions in %s: %w", room, err)
	}
	var out []*event.Event
	for _, ev := range evs {
		if ev.Redacts() == target {
			out = append(out, ev)
		}
	}
	return out, nil
}

// StoredStateBefore implements rooms.RemoteStore.
func (r *Rooms) StoredStateBefore(ctx context.Context, room id.RoomID, eventID id.EventID) (rooms.State, bool, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, false, err
	}
	var snap int64
	err = r.pool.QueryRow(ctx, selectSnapshotByID, e.nid, eventID).Scan(&snap)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && snap < 0) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state before %s: %w", eventID, err)
	}
	st, err := r.snapshotState(ctx, r.pool, e.nid, e.version, snap)
	if err != nil {
		return nil, false, fmt.Errorf("state before %s: %w", eventID, err)
	}
	return st, true, nil
}

// snapshotState reads a snapshot as events.
func (r *Rooms) snapshotState(ctx context.Context, q querier, nid int64, v roomversion.Version, snap int64) (rooms.State, error) {
	entries, err := loadSnapshot(ctx, q, snap)
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(entries))
	for _, s := range entries {
		seqs = append(seqs, s)
	}
	evs, err := scanEvents(ctx, q, v, selectEventsBySeq, nid, seqs)
	if err != nil {
		return nil, err
	}
	st := make(rooms.State, len(evs))
	for _, ev := range evs {
		st[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	}
	return st, nil
}

// remoteRow is one event row to insert.
type remoteRow struct {
	ev         *event.Event
	seq        int64
	snapshot   int64
	replaces   *int64
	outlier    bool
	softFailed bool
	rejected   *string
	// topo is the event's place in the topological order (sql/0015);
	// insertRemoteRows takes the event's depth when it is 0.
	topo int64
}

// lockOrCreate takes the room's row lock, creating the row first when
// newRoom is set and the room is unknown.
func (r *Rooms) lockOrCreate(ctx context.Context, tx pgx.Tx, room id.RoomID, newRoom *roomversion.Version) (nid int64, v roomversion.Version, lastSeq, snapshot int64, err error) {
	if newRoom != nil {
		if _, err := tx.Exec(ctx, insertRoom, room, string(newRoom.ID), nowMS()); err != nil {
			return 0, v, 0, 0, fmt.Errorf("insert room %s: %w", room, err)
		}
	}
	var ver string
	err = tx.QueryRow(ctx, lockRoomOnly, room).Scan(&nid, &ver, &lastSeq, &snapshot)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, v, 0, 0, rooms.ErrRoomNotFound
	}
	if err != nil {
		return 0, v, 0, 0, fmt.Errorf("lock room %s: %w", room, err)
	}
	var ok bool
	if v, ok = roomversion.Lookup(roomversion.ID(ver)); !ok {
		return 0, v, 0, 0, fmt.Errorf("room %s has unknown version %q", room, ver)
	}
	if newRoom != nil && v.ID != newRoom.ID {
		return 0, v, 0, 0, fmt.Errorf("room %s exists with version %s, not %s", room, v.ID, newRoom.ID)
	}
	return nid, v, lastSeq, snapshot, nil
}

// lockedHead is the room's head for a writer holding its row lock.
func (r *Rooms) lockedHead(ctx context.Context, tx pgx.Tx, room id.RoomID, nid int64, v roomversion.Version, lastSeq int64) (*rooms.Head, error) {
	if cached := r.writerHead(room, lastSeq); cached != nil {
		h := *cached
		return &h, nil
	}
	return r.loadHead(ctx, tx, room, nid, v)
}

// StoreOutliers implements rooms.RemoteStore.
func (r *Rooms) StoreOutliers(ctx context.Context, room id.RoomID, newRoom *roomversion.Version, evs []rooms.OutlierEvent) error {
	var (
		head    *rooms.Head
		entry   *roomEntry
		learned = map[auth.StateKey]int64{}
		res     *reservation
	)
	// The positions stay in flight until the transaction has ended.
	defer func() { res.end() }()
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		nid, v, lastSeq, roomSnap, err := r.lockOrCreate(ctx, tx, room, newRoom)
		if err != nil {
			return err
		}
		entry = &roomEntry{nid: nid, version: v}
		if head, err = r.lockedHead(ctx, tx, room, nid, v, lastSeq); err != nil {
			return err
		}
		ids := make([]id.EventID, 0, len(evs))
		for _, o := range evs {
			ids = append(ids, o.Event.EventID())
		}
		rows, err := tx.Query(ctx, selectExistingIDs, ids)
		if err != nil {
			return fmt.Errorf("look up events: %w", err)
		}
		existing, err := pgx.CollectRows(rows, pgx.RowTo[id.EventID])
		if err != nil {
			return fmt.Errorf("look up events: %w", err)
		}
		seqOf := map[id.EventID]int64{}
		var out []remoteRow
		seq := lastSeq
		for _, o := range evs {
			eid := o.Event.EventID()
			if slices.Contains(existing, eid) || seqOf[eid] != 0 {
				continue
			}
			seq++
			seqOf[eid] = seq
			row := remoteRow{ev: o.Event, seq: seq, snapshot: unknownSnapshot, outlier: true}
			if o.Rejected != "" {
				reason := o.Rejected
				row.rejected = &reason
			}
			if o.StateBefore != nil && o.Rejected == "" {
				if row.snapshot, err = r.snapshotFrom(ctx, tx, learned, nid, roomSnap, head.State, o.StateBefore, seqOf); err != nil {
					return err
				}
				if sk := o.Event.StateKey(); sk != nil {
					if prev := o.StateBefore.Get(o.Event.Type(), *sk); prev != nil {
						s, err := r.seqsOf(ctx, tx, nid, []id.EventID{prev.EventID()}, seqOf)
						if err != nil {
							return err
						}
						if ps, ok := s[prev.EventID()]; ok {
							row.replaces = &ps
						}
					}
				}
			}
			out = append(out, row)
		}
		if len(out) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, updateLastSeq, nid, seq); err != nil {
			return fmt.Errorf("update room %s: %w", room, err)
		}
		if res, err = r.stream.reserve(ctx, tx, len(out)); err != nil {
			return err
		}
		if _, err := insertRemoteRows(ctx, tx, nid, out, res.positions); err != nil {
			return err
		}
		head.Seq = seq
		r.setPending(room, head)
		return nil
	})
	if head != nil {
		defer r.dropPending(room, head)
	}
	if err != nil {
		return err
	}
	r.learn(learned)
	if head != nil {
		entry.head = head
		r.storeHead(room, entry)
	}
	if res != nil {
		res.end()
		return r.stream.wait(ctx, res.last())
	}
	return nil
}

func (r *Rooms) learn(learned map[auth.StateKey]int64) {
	r.mu.Lock()
	for k, nid := range learned {
		r.keys[k] = nid
	}
	r.mu.Unlock()
}

// AppendRemote implements rooms.RemoteStore.
func (r *Rooms) AppendRemote(ctx context.Context, room id.RoomID, ev *event.Event, decide func(h *rooms.Head) (*rooms.RemoteDecision, error)) (*rooms.Persisted, error) {
	var (
		head    *rooms.Head
		entry   *roomEntry
		out     *rooms.Persisted
		learned = map[auth.StateKey]int64{}
		res     *reservation
	)
	// The position stays in flight until the transaction has ended.
	defer func() { res.end() }()
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		nid, v, lastSeq, roomSnap, err := r.lockOrCreate(ctx, tx, room, nil)
		if err != nil {
			return err
		}
		entry = &roomEntry{nid: nid, version: v}
		if head, err = r.lockedHead(ctx, tx, room, nid, v, lastSeq); err != nil {
			return err
		}
		dec, err := decide(head)
		if err != nil {
			return err
		}
		seq := head.Seq + 1
		eid := ev.EventID()
		// An outlier that now arrives in the graph keeps its row and seq
		// (snapshots may name it) and joins the timeline where it is.
		var oldSeq int64
		var wasOutlier bool
		err = tx.QueryRow(ctx, selectOutlierSeq, nid, eid).Scan(&oldSeq, &wasOutlier)
		switch {
		case err == nil && !wasOutlier:
			return fmt.Errorf("insert events: event %s exists already: %w", eid, rooms.ErrEventIDTaken)
		case err == nil:
			seq = oldSeq
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("look up %s: %w", eid, err)
		}
		seqOf := map[id.EventID]int64{eid: seq}
		row := remoteRow{ev: ev, seq: seq, snapshot: unknownSnapshot, softFailed: dec.SoftFailed}
		if row.topo, err = receivedTopo(ctx, tx, nid, ev); err != nil {
			return err
		}
		next := *head
		next.Seq = max(head.Seq, seq)
		if dec.Rejected != "" {
			reason := dec.Rejected
			row.rejected, row.softFailed = &reason, false
		}
		if dec.StateBefore != nil {
			if row.snapshot, err = r.snapshotFrom(ctx, tx, learned, nid, roomSnap, head.State, dec.StateBefore, seqOf); err != nil {
				return err
			}
			if sk := ev.StateKey(); sk != nil {
				if prev := dec.StateBefore.Get(ev.Type(), *sk); prev != nil {
					s, err := r.seqsOf(ctx, tx, nid, []id.EventID{prev.EventID()}, seqOf)
					if err != nil {
						return err
					}
					if ps, ok := s[prev.EventID()]; ok {
						row.replaces = &ps
					}
				}
			}
		}
		accepted := dec.Rejected == "" && !dec.SoftFailed
		var memberSeqs []int64
		newSnap := roomSnap
		if accepted {
			if newSnap, err = r.snapshotFrom(ctx, tx, learned, nid, row.snapshot, dec.StateBefore, dec.CurrentState, seqOf); err != nil {
				return err
			}
			if memberSeqs, err = r.replaceCurrentState(ctx, tx, learned, nid, head.State, dec.CurrentState, seqOf); err != nil {
				return err
			}
			next.State = dec.CurrentState
			next.Extremities = dec.Extremities
			if dec.ApplyRedaction {
				if err := r.applyRedaction(ctx, tx, nid, &next, ev, seq); err != nil {
					return err
				}
			}
		}
		extremityIDs := make([]id.EventID, 0, len(next.Extremities))
		for _, x := range next.Extremities {
			extremityIDs = append(extremityIDs, x.EventID())
		}
		xs, err := r.seqsOf(ctx, tx, nid, extremityIDs, seqOf)
		if err != nil {
			return err
		}
		extremities := make([]int64, 0, len(xs))
		for _, x := range extremityIDs {
			if s, ok := xs[x]; ok {
				extremities = append(extremities, s)
			}
		}
		if accepted {
			if next.Topo, err = extremitiesTopo(ctx, tx, nid, extremities, seq, row.topo); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, updateRoomHead, nid, next.Seq, newSnap, extremities); err != nil {
			return fmt.Errorf("update room %s: %w", room, err)
		}
		// The position is reserved last: under the room lock, after
		// current_state is written (sql/0016's floor_pos).
		if res, err = r.stream.reserve(ctx, tx, 1); err != nil {
			return err
		}
		var pos map[int64]int64
		if wasOutlier {
			var p int64
			if err := tx.QueryRow(ctx, updateOutlierRow, nid, seq, row.softFailed, row.rejected, row.snapshot, row.replaces, row.topo, res.positions[0]).Scan(&p); err != nil {
				return fmt.Errorf("move %s into the room graph: %w", eid, err)
			}
			pos = map[int64]int64{seq: p}
		} else if pos, err = insertRemoteRows(ctx, tx, nid, []remoteRow{row}, res.positions); err != nil {
			return err
		}
		if dec.RedactedBy != "" {
			rs, err := r.seqsOf(ctx, tx, nid, []id.EventID{dec.RedactedBy}, nil)
			if err != nil {
				return err
			}
			if rseq, ok := rs[dec.RedactedBy]; ok {
				if _, err := tx.Exec(ctx, markRedacted, nid, eid, rseq); err != nil {
					return fmt.Errorf("mark %s redacted: %w", eid, err)
				}
			}
		}
		if len(memberSeqs) > 0 {
			if _, err := tx.Exec(ctx, upsertMemberships, nid, memberSeqs); err != nil {
				return fmt.Errorf("update memberships of %s: %w", room, err)
			}
		}
		out = &rooms.Persisted{Event: ev, EventID: eid, Seq: seq, StreamPos: pos[seq]}
		head = &next
		r.setPending(room, head)
		return nil
	})
	if head != nil {
		defer r.dropPending(room, head)
	}
	if err != nil {
		return nil, err
	}
	r.learn(learned)
	entry.head = head
	r.storeHead(room, entry)
	res.end()
	if err := r.stream.wait(ctx, out.StreamPos); err != nil {
		return nil, err
	}
	return out, nil
}

// replaceCurrentState makes the room's current_state rows target, given
// that they are old now, and returns the seqs of the member events that
// changed (for room_memberships). A member whose key left the state keeps
// its membership row: resolution only drops a key when no branch could
// authorise it, which the membership it had stays the best answer to.
func (r *Rooms) replaceCurrentState(ctx context.Context, tx pgx.Tx, learned map[auth.StateKey]int64, nid int64, old, target rooms.State, seqOf map[id.EventID]int64) ([]int64, error) {
	var changed []id.EventID
	var changedKeys []auth.StateKey
	for k, ev := range target {
		if o := old[k]; o == nil || o.EventID() != ev.EventID() {
			changed = append(changed, ev.EventID())
			changedKeys = append(changedKeys, k)
		}
	}
	var removedKeys []auth.StateKey
	for k := range old {
		if target[k] == nil {
			removedKeys = append(removedKeys, k)
		}
	}
	nids, err := r.keyNids(ctx, tx, learned, append(removedKeys, changedKeys...))
	if err != nil {
		return nil, err
	}
	var removed []int64
	for _, k := range removedKeys {
		removed = append(removed, nids[k])
	}
	if len(removed) > 0 {
		if _, err := tx.Exec(ctx, deleteCurrentState, nid, removed); err != nil {
			return nil, fmt.Errorf("update current state: %w", err)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	seqs, err := r.seqsOf(ctx, tx, nid, changed, seqOf)
	if err != nil {
		return nil, err
	}
	var keyNids, rowSeqs, memberSeqs []int64
	for i, k := range changedKeys {
		s, ok := seqs[changed[i]]
		if !ok {
			return nil, fmt.Errorf("current state event %s is not stored", changed[i])
		}
		keyNids, rowSeqs = append(keyNids, nids[k]), append(rowSeqs, s)
		if k.Type == auth.TypeMember {
			memberSeqs = append(memberSeqs, s)
		}
	}
	if _, err := tx.Exec(ctx, upsertStateRows, nid, keyNids, rowSeqs); err != nil {
		return nil, fmt.Errorf("update current state: %w", err)
	}
	return memberSeqs, nil
}

// seqsOf returns the seqs of ids in room: from known first (events of the
// transaction not inserted yet), then from the database.
func (r *Rooms) seqsOf(ctx context.Context, tx pgx.Tx, nid int64, ids []id.EventID, known map[id.EventID]int64) (map[id.EventID]int64, error) {
	out := make(map[id.EventID]int64, len(ids))
	var ask []id.EventID
	for _, eid := range ids {
		if s, ok := known[eid]; ok {
			out[eid] = s
		} else {
			ask = append(ask, eid)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, selectSeqsByID, nid, ask)
	if err != nil {
		return nil, fmt.Errorf("look up events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var eid id.EventID
		var s int64
		if err := rows.Scan(&eid, &s); err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
		out[eid] = s
	}
	return out, rows.Err()
}

// snapshotFrom records target as a snapshot, written as a delta on base
// (whose state is baseState; base < 0: nothing known) when target only
// adds or replaces entries, else in full. It returns base itself when the
// two are equal. Every event of target must be stored or in seqOf.
func (r *Rooms) snapshotFrom(ctx context.Context, tx pgx.Tx, learned map[auth.StateKey]int64, nid, base int64, baseState, target rooms.State, seqOf map[id.EventID]int64) (int64, error) {
	if base < 0 {
		base, baseState = 0, nil
	}
	var (
		changedIDs  []id.EventID
		changedKeys []auth.StateKey
		removed     bool
	)
	for k, ev := range target {
		if o := baseState[k]; o == nil || o.EventID() != ev.EventID() {
			changedIDs = append(changedIDs, ev.EventID())
			changedKeys = append(changedKeys, k)
		}
	}
	for k := range baseState {
		if target[k] == nil {
			removed = true
			break
		}
	}
	if len(changedIDs) == 0 && !removed {
		return base, nil
	}
	seqs, err := r.seqsOf(ctx, tx, nid, changedIDs, seqOf)
	if err != nil {
		return 0, err
	}
	nids, err := r.keyNids(ctx, tx, learned, changedKeys)
	if err != nil {
		return 0, err
	}
	keyNids := make([]int64, 0, len(changedIDs))
	entrySeqs := make([]int64, 0, len(changedIDs))
	for i, k := range changedKeys {
		s, ok := seqs[changedIDs[i]]
		if !ok {
			return 0, fmt.Errorf("state event %s is not stored", changedIDs[i])
		}
		keyNids, entrySeqs = append(keyNids, nids[k]), append(entrySeqs, s)
	}
	var snap int64
	if !removed && base != 0 {
		err := tx.QueryRow(ctx, insertDelta, nid, base, keyNids, entrySeqs, maxSnapshotChain).Scan(&snap)
		if err == nil {
			return snap, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("insert state delta: %w", err)
		}
	}
	entries := map[int64]int64{}
	if !removed {
		if entries, err = loadSnapshot(ctx, tx, base); err != nil {
			return 0, err
		}
	} else {
		// Start from the kept entries of base.
		baseEntries, err := loadSnapshot(ctx, tx, base)
		if err != nil {
			return 0, err
		}
		var kept []auth.StateKey
		for k, ev := range baseState {
			if t := target[k]; t != nil && t.EventID() == ev.EventID() {
				kept = append(kept, k)
			}
		}
		keptNids, err := r.keyNids(ctx, tx, learned, kept)
		if err != nil {
			return 0, err
		}
		for _, kn := range keptNids {
			if s, ok := baseEntries[kn]; ok {
				entries[kn] = s
			}
		}
	}
	for i, kn := range keyNids {
		entries[kn] = entrySeqs[i]
	}
	keys, vals := make([]int64, 0, len(entries)), make([]int64, 0, len(entries))
	for k, s := range entries {
		keys, vals = append(keys, k), append(vals, s)
	}
	if err := tx.QueryRow(ctx, insertFull, nid, keys, vals).Scan(&snap); err != nil {
		return 0, fmt.Errorf("insert state snapshot: %w", err)
	}
	return snap, nil
}

const (
	insertKeyNids = `
INSERT INTO state_keys (event_type, state_key) SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (event_type, state_key) DO NOTHING`
	selectKeyNids = `
SELECT k.event_type, k.state_key, k.key_nid FROM state_keys k
JOIN unnest($1::text[], $2::text[]) AS u(t, s) ON k.event_type = u.t AND k.state_key = u.s`
)

// keyNids interns many (type, state key) pairs in two round trips (a
// joined room's state has one per member); like keyNid, new pairs go
// into learned until the transaction commits.
func (r *Rooms) keyNids(ctx context.Context, tx pgx.Tx, learned map[auth.StateKey]int64, keys []auth.StateKey) (map[auth.StateKey]int64, error) {
	out := make(map[auth.StateKey]int64, len(keys))
	var types, skeys []string
	r.mu.Lock()
	for _, k := range keys {
		if nid, ok := r.keys[k]; ok {
			out[k] = nid
		} else if nid, ok := learned[k]; ok {
			out[k] = nid
		} else if _, dup := out[k]; !dup {
			out[k] = 0
			types, skeys = append(types, k.Type), append(skeys, k.StateKey)
		}
	}
	r.mu.Unlock()
	if len(types) == 0 {
		return out, nil
	}
	if len(types) < 4 {
		for i := range types {
			nid, err := r.keyNid(ctx, tx, learned, types[i], skeys[i])
			if err != nil {
				return nil, err
			}
			out[auth.StateKey{Type: types[i], StateKey: skeys[i]}] = nid
		}
		return out, nil
	}
	if _, err := tx.Exec(ctx, insertKeyNids, types, skeys); err != nil {
		return nil, fmt.Errorf("intern state keys: %w", err)
	}
	rows, err := tx.Query(ctx, selectKeyNids, types, skeys)
	if err != nil {
		return nil, fmt.Errorf("intern state keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k auth.StateKey
		var nid int64
		if err := rows.Scan(&k.Type, &k.StateKey, &nid); err != nil {
			return nil, fmt.Errorf("intern state keys: %w", err)
		}
		out[k] = nid
		learned[k] = nid
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intern state keys: %w", err)
	}
	for k, nid := range out {
		if nid == 0 {
			return nil, fmt.Errorf("intern state key (%s, %q): not found after insert", k.Type, k.StateKey)
		}
	}
	return out, nil
}

// insertRemoteRows inserts rows at the stream positions reserved for them
// and returns the positions by seq.
func insertRemoteRows(ctx context.Context, tx pgx.Tx, nid int64, rows []remoteRow, positions []int64) (map[int64]int64, error) {
	n := len(rows)
	var (
		seqs, origin, snaps []int64
		replaces            = make([]*int64, 0, n)
		ids, types, senders []string
		keys, members       = make([]*string, 0, n), make([]*string, 0, n)
		raws                [][]byte
		outliers, soft      []bool
		rejected            = make([]*string, 0, n)
		topos               = make([]int64, 0, n)
	)
	for _, r := range rows {
		ev := r.ev
		seqs = append(seqs, r.seq)
		ids = append(ids, string(ev.EventID()))
		types = append(types, ev.Type())
		keys = append(keys, ev.StateKey())
		senders = append(senders, string(ev.Sender()))
		var m *string
		if ev.Type() == auth.TypeMember && ev.IsState() {
			mm := ev.Membership()
			m = &mm
		}
		members = append(members, m)
		origin = append(origin, ev.OriginServerTS())
		snaps = append(snaps, r.snapshot)
		replaces = append(replaces, r.replaces)
		raws = append(raws, ev.Raw())
		outliers, soft = append(outliers, r.outlier), append(soft, r.softFailed)
		rejected = append(rejected, r.rejected)
		topo := r.topo
		if topo == 0 {
			topo = ev.Depth()
		}
		topos = append(topos, topo)
	}
	q, err := tx.Query(ctx, insertRemoteEvents, nid, positions, seqs, ids, types, keys, senders, members, origin, snaps,
		replaces, raws, outliers, soft, rejected, topos)
	if err != nil {
		return nil, fmt.Errorf("insert events: %w", err)
	}
	defer q.Close()
	pos := make(map[int64]int64, n)
	for q.Next() {
		var s, p int64
		if err := q.Scan(&s, &p); err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		pos[s] = p
	}
	if err := q.Err(); err != nil {
		if isUniqueViolation(err) {
			return nil, fmt.Errorf("insert events: %w: %w", rooms.ErrEventIDTaken, err)
		}
		return nil, fmt.Errorf("insert events: %w", err)
	}
	return pos, nil
}
