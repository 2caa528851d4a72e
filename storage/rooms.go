package storage

// Rooms implements the stores of package rooms (sql/0002_rooms.sql).
//
// Reading for /sync (the sync engine's two questions):
//   - events of room R with stream_pos in (a, b]: RoomEventsBetween, or
//     SELECT … FROM events WHERE room_nid = R AND stream_pos > a AND
//     stream_pos <= b ORDER BY stream_pos (index events_room_stream);
//   - rooms where user U's membership changed in (a, b]: MembershipChanges,
//     or SELECT … FROM events WHERE event_type = 'm.room.member' AND
//     state_key = U AND stream_pos > a AND stream_pos <= b (partial index
//     events_member_changes).
//
// Every event with stream_pos <= CurrentStreamPos() is committed: the
// positions come from a sequence, reserved by each persisting transaction
// after its room row locks, and CurrentStreamPos is the frontier below
// which no reservation is still in flight (stream_frontier.go).

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

var _ rooms.Store = (*Rooms)(nil)

// Rooms is the Postgres store of rooms, events, state and aliases, with an
// in-memory cache of every touched room's head that is replaced after each
// commit and checked against the room row's sequence under its lock before
// a write builds on it.
type Rooms struct {
	pool *pgxpool.Pool

	mu    sync.Mutex
	cache map[id.RoomID]*roomEntry
	keys  map[auth.StateKey]int64 // interned state keys
	// pending holds, per room, the head a transaction is committing (set
	// under the room's row lock just before COMMIT, cleared after). The
	// next writer, which takes the row lock the moment COMMIT is done,
	// finds the head there when the committed one is not cached yet;
	// readers never see it.
	pending map[id.RoomID]*rooms.Head

	group groupCommitter
	// stream tracks the stream positions reserved and not yet committed.
	stream *streamFrontier
}

// roomEntry is what the store remembers of a room.
type roomEntry struct {
	nid     int64
	version roomversion.Version
	head    *rooms.Head // nil until loaded; immutable once set
}

// NewRooms returns the rooms store on pool.
func NewRooms(pool *pgxpool.Pool) *Rooms {
	return &Rooms{pool: pool, cache: map[id.RoomID]*roomEntry{}, keys: map[auth.StateKey]int64{},
		pending: map[id.RoomID]*rooms.Head{}, stream: newStreamFrontier()}
}

const (
	insertRoom = `
INSERT INTO rooms (room_id, room_version, created_ts) VALUES ($1, $2, $3)
ON CONFLICT (room_id) DO NOTHING RETURNING room_nid`
	// lockRoom takes the room's row lock and, in the same round trip,
	// looks the client transaction id up (NULLs when there is none).
	lockRoom = `
SELECT room_nid, room_version, last_seq, snapshot_nid,
       (SELECT event_id FROM client_txns WHERE user_id = $2 AND device_id = $3 AND txn_id = $4)
FROM rooms WHERE room_id = $1 FOR UPDATE`
	selectRoom = `SELECT room_nid, room_version FROM rooms WHERE room_id = $1`
	findTxn    = `
SELECT event_id FROM client_txns WHERE user_id = $1 AND device_id = $2 AND txn_id = $3`
	insertTxn = `
INSERT INTO client_txns (user_id, device_id, txn_id, room_nid, event_id, created_ts)
VALUES ($1, $2, $3, $4, $5, $6)`
	updateRoomHead = `
UPDATE rooms SET last_seq = $2, snapshot_nid = $3, extremities = $4 WHERE room_nid = $1`
	upsertCurrentState = `
WITH old AS (SELECT seq FROM current_state WHERE room_nid = $1 AND key_nid = $2),
up AS (
    INSERT INTO current_state (room_nid, key_nid, seq) VALUES ($1, $2, $3)
    ON CONFLICT (room_nid, key_nid) DO UPDATE SET seq = EXCLUDED.seq)
SELECT seq FROM old`
	markRedacted = `
UPDATE events SET redacted_by = $3
WHERE room_nid = $1 AND event_id = $2 AND redacted_by IS NULL`
	// insertEvents inserts a transaction's events with the stream
	// positions reserved for them ($2, in seq order; NULL inside a group
	// commit, where they stay 0 until the batch's last statement,
	// assignPositions, numbers every event of the batch).
	insertEvents = `
INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, state_key, sender, membership,
                    origin_ts, snapshot_nid, replaces_seq, txn_device, txn_id, event_json, topo)
SELECT $1, u.seq, COALESCE(u.pos, 0), u.event_id, u.event_type, u.state_key, u.sender, u.membership,
       u.origin_ts, u.snapshot_nid, u.replaces_seq, u.txn_device, u.txn_id, u.event_json, u.topo
FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::bytea[], $15::bigint[])
     AS u(pos, seq, event_id, event_type, state_key, sender, membership,
          origin_ts, snapshot_nid, replaces_seq, txn_device, txn_id, event_json, topo)
RETURNING seq, stream_pos`
	upsertMemberships = `
INSERT INTO room_memberships (room_nid, user_id, membership, seq, stream_pos)
SELECT DISTINCT ON (state_key) room_nid, state_key, membership, seq, stream_pos
FROM events WHERE room_nid = $1 AND seq = ANY($2) AND event_type = 'm.room.member'
ORDER BY state_key, seq DESC
ON CONFLICT (room_nid, user_id) DO UPDATE SET membership = EXCLUDED.membership, seq = EXCLUDED.seq,
    stream_pos = EXCLUDED.stream_pos,
    forgotten = room_memberships.forgotten AND EXCLUDED.membership IN ('leave', 'ban')`
)

// pendingEvent is an event built in this transaction, not yet inserted.
type pendingEvent struct {
	ev       *event.Event
	seq      int64
	snapshot int64
	replaces *int64
	topo     int64
}

// Append implements rooms.EventWriter.
func (r *Rooms) Append(ctx context.Context, req rooms.AppendRequest) ([]rooms.Persisted, error) {
	if req.NewRoom == nil {
		return r.group.append(ctx, r, req)
	}
	return r.appendAlone(ctx, req)
}

// appendAlone persists one request in its own transaction.
func (r *Rooms) appendAlone(ctx context.Context, req rooms.AppendRequest) ([]rooms.Persisted, error) {
	out, err := r.appendOnce(ctx, req)
	if err != nil && req.Txn != nil && isConstraintViolation(err, "client_txns_pkey") {
		// A concurrent retry of the same transaction id committed first
		// (the lock query's transaction lookup ran on a snapshot taken
		// before it); run again to return its event.
		return r.appendOnce(ctx, req)
	}
	return out, err
}

func isConstraintViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

func (r *Rooms) appendOnce(ctx context.Context, req rooms.AppendRequest) ([]rooms.Persisted, error) {
	st := appendState{learned: map[auth.StateKey]int64{}}
	// The reservation ends once the transaction has ended, not when the
	// function BeginFunc runs returns (before its COMMIT).
	defer func() { st.reserved.end() }()
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if err := r.appendIn(ctx, tx, req, &st); err != nil {
			return err
		}
		if st.head != nil {
			r.setPending(req.RoomID, st.head)
		}
		return nil
	})
	if st.head != nil {
		defer r.dropPending(req.RoomID, st.head)
	}
	if err != nil {
		return nil, err
	}
	r.learn(st.learned)
	if st.head != nil {
		st.entry.head = st.head
		r.storeHead(req.RoomID, st.entry)
	}
	st.reserved.end()
	if err := r.visible(ctx, st.out); err != nil {
		return nil, err
	}
	return st.out, nil
}

// visible returns once the stream frontier has passed every position of
// out: an append is answered (and notified) only when readers can read
// it.
func (r *Rooms) visible(ctx context.Context, out []rooms.Persisted) error {
	var top int64
	for _, p := range out {
		top = max(top, p.StreamPos)
	}
	if top == 0 {
		return nil
	}
	return r.stream.wait(ctx, top)
}

// appendState is what appendIn hands back: the events stored (or the
// deduplicated one), the room's new head, and the state keys interned.
type appendState struct {
	out     []rooms.Persisted
	entry   *roomEntry
	head    *rooms.Head
	learned map[auth.StateKey]int64
	// unpositioned (group commit) inserts the events with stream_pos 0;
	// the batch assigns the positions at its end (groupcommit.go).
	unpositioned bool
	// reserved are the positions taken otherwise, to end once the
	// transaction has ended.
	reserved *reservation
	// batchHead, when set, returns the head an earlier request of the same
	// uncommitted batch left for the room at lastSeq.
	batchHead func(room id.RoomID, lastSeq int64) *rooms.Head
}

// appendIn runs one append request inside tx: lock the room row, check the
// transaction id, build the events on the head, store them.
func (r *Rooms) appendIn(ctx context.Context, tx pgx.Tx, req rooms.AppendRequest, st *appendState) error {
	var (
		out     []rooms.Persisted
		entry   *roomEntry
		head    *rooms.Head
		learned = st.learned
	)
	err := func() error {
		var (
			nid, lastSeq, snapshot int64
			version                roomversion.Version
		)
		if req.NewRoom != nil {
			version = *req.NewRoom
			err := tx.QueryRow(ctx, insertRoom, req.RoomID, string(version.ID), nowMS()).Scan(&nid)
			if errors.Is(err, pgx.ErrNoRows) {
				return rooms.ErrRoomExists
			}
			if err != nil {
				return fmt.Errorf("insert room %s: %w", req.RoomID, err)
			}
			head = &rooms.Head{RoomID: req.RoomID, Version: version, State: rooms.State{}}
		} else {
			var ver string
			var txnUser, txnDevice, txnID *string
			if t := req.Txn; t != nil {
				u, d := string(t.User), string(t.Device)
				txnUser, txnDevice, txnID = &u, &d, &t.TxnID
			}
			var dup *id.EventID
			err := tx.QueryRow(ctx, lockRoom, req.RoomID, txnUser, txnDevice, txnID).Scan(&nid, &ver, &lastSeq, &snapshot, &dup)
			if errors.Is(err, pgx.ErrNoRows) {
				return rooms.ErrRoomNotFound
			}
			if err != nil {
				return fmt.Errorf("lock room %s: %w", req.RoomID, err)
			}
			if dup != nil {
				out = []rooms.Persisted{{EventID: *dup, Deduplicated: true}}
				return nil
			}
			var ok bool
			if version, ok = roomversion.Lookup(roomversion.ID(ver)); !ok {
				return fmt.Errorf("room %s has unknown version %q", req.RoomID, ver)
			}
		}
		if req.Txn != nil && req.NewRoom != nil {
			var eventID id.EventID
			err := tx.QueryRow(ctx, findTxn, req.Txn.User, req.Txn.Device, req.Txn.TxnID).Scan(&eventID)
			if err == nil {
				out = []rooms.Persisted{{EventID: eventID, Deduplicated: true}}
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("look up transaction: %w", err)
			}
		}
		entry = &roomEntry{nid: nid, version: version}
		if head == nil && st.batchHead != nil {
			if b := st.batchHead(req.RoomID, lastSeq); b != nil {
				h := *b
				head = &h
			}
		}
		if head == nil {
			if cached := r.writerHead(req.RoomID, lastSeq); cached != nil {
				h := *cached
				head = &h
			} else {
				var err error
				if head, err = r.loadHead(ctx, tx, req.RoomID, nid, version); err != nil {
					return err
				}
			}
		}
		pending := make([]pendingEvent, 0, len(req.Build))
		for _, build := range req.Build {
			ev, err := build(head)
			if err != nil {
				return err
			}
			p := pendingEvent{ev: ev, seq: head.Seq + 1, snapshot: snapshot, topo: topoAbove(head.Topo, ev)}
			if ev.IsState() {
				keyNid, err := r.keyNid(ctx, tx, learned, ev.Type(), *ev.StateKey())
				if err != nil {
					return err
				}
				var old int64
				err = tx.QueryRow(ctx, upsertCurrentState, nid, keyNid, p.seq).Scan(&old)
				if err == nil {
					p.replaces = &old
				} else if !errors.Is(err, pgx.ErrNoRows) {
					return fmt.Errorf("update current state: %w", err)
				}
				if snapshot, err = r.newSnapshot(ctx, tx, nid, snapshot, keyNid, p.seq); err != nil {
					return err
				}
				head.State = head.State.With(ev)
			}
			if ev.Type() == auth.TypeRedaction && ev.Redacts() != "" {
				if err := r.applyRedaction(ctx, tx, nid, head, ev, p.seq); err != nil {
					return err
				}
			}
			pending = append(pending, p)
			head.Extremities, head.Topo = []*event.Event{ev}, p.topo
			head.Seq = p.seq
		}
		var positions []int64
		if !st.unpositioned {
			res, err := r.stream.reserve(ctx, tx, len(pending))
			if err != nil {
				return err
			}
			st.reserved, positions = res, res.positions
		}
		var err error
		if out, err = insertPending(ctx, tx, nid, req.Txn, pending, snapshot, positions); err != nil {
			return err
		}
		return nil
	}()
	if err != nil {
		return err
	}
	st.out, st.entry, st.head = out, entry, head
	return nil
}

// insertPending moves the room's head, records the transaction id, inserts
// the transaction's events at the positions reserved for them (nil: 0,
// for the group commit to number) and updates the membership table, in
// one round trip.
func insertPending(ctx context.Context, tx pgx.Tx, nid int64, txn *rooms.TxnKey, pending []pendingEvent, snapshot int64, positions []int64) ([]rooms.Persisted, error) {
	n := len(pending)
	var (
		seqs, origin, snaps []int64
		replaces            = make([]*int64, 0, n)
		ids, types, senders []string
		keys, members       = make([]*string, 0, n), make([]*string, 0, n)
		txnDev, txnIDs      = make([]*string, 0, n), make([]*string, 0, n)
		raws                [][]byte
		memberSeqs          []int64
		topos               = make([]int64, 0, n)
	)
	for i, p := range pending {
		ev := p.ev
		seqs = append(seqs, p.seq)
		ids = append(ids, string(ev.EventID()))
		types = append(types, ev.Type())
		keys = append(keys, ev.StateKey())
		senders = append(senders, string(ev.Sender()))
		var m *string
		if ev.Type() == auth.TypeMember && ev.IsState() {
			mm := ev.Membership()
			m = &mm
			memberSeqs = append(memberSeqs, p.seq)
		}
		members = append(members, m)
		origin = append(origin, ev.OriginServerTS())
		snaps = append(snaps, p.snapshot)
		replaces = append(replaces, p.replaces)
		if txn != nil && i == 0 {
			d, t := string(txn.Device), txn.TxnID
			txnDev, txnIDs = append(txnDev, &d), append(txnIDs, &t)
		} else {
			txnDev, txnIDs = append(txnDev, nil), append(txnIDs, nil)
		}
		raws = append(raws, ev.Raw())
		topos = append(topos, p.topo)
	}
	batch := &pgx.Batch{}
	last := pending[n-1].seq
	batch.Queue(updateRoomHead, nid, last, snapshot, []int64{last})
	if txn != nil {
		batch.Queue(insertTxn, txn.User, txn.Device, txn.TxnID, nid, pending[0].ev.EventID(), nowMS())
	}
	out := make([]rooms.Persisted, 0, n)
	batch.Queue(insertEvents, nid, positions, seqs, ids, types, keys, senders, members, origin, snaps, replaces,
		txnDev, txnIDs, raws, topos).Query(func(rows pgx.Rows) error {
		bySeq := map[int64]int64{}
		for rows.Next() {
			var seq, pos int64
			if err := rows.Scan(&seq, &pos); err != nil {
				return err
			}
			bySeq[seq] = pos
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range pending {
			out = append(out, rooms.Persisted{Event: p.ev, EventID: p.ev.EventID(), Seq: p.seq, StreamPos: bySeq[p.seq]})
		}
		return nil
	})
	if len(memberSeqs) > 0 {
		batch.Queue(upsertMemberships, nid, memberSeqs)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		if isUniqueViolation(err) {
			return nil, fmt.Errorf("insert events: an event id exists already: %w", err)
		}
		return nil, fmt.Errorf("insert events: %w", err)
	}
	return out, nil
}

// applyRedaction marks the redacted event and, when it is current state,
// swaps in its redacted form: the auth rules read redacted state.
func (r *Rooms) applyRedaction(ctx context.Context, tx pgx.Tx, nid int64, head *rooms.Head, redaction *event.Event, seq int64) error {
	target := redaction.Redacts()
	if _, err := tx.Exec(ctx, markRedacted, nid, target, seq); err != nil {
		return fmt.Errorf("mark %s redacted: %w", target, err)
	}
	for k, ev := range head.State {
		if ev.EventID() == target {
			st := make(rooms.State, len(head.State))
			for kk, vv := range head.State {
				st[kk] = vv
			}
			st[k] = ev.Redacted()
			head.State = st
			break
		}
	}
	return nil
}

// writerHead is the head a writer holding the room's row lock may build
// on: the committing or the committed one, if its sequence number is the
// room row's.
func (r *Rooms) writerHead(room id.RoomID, lastSeq int64) *rooms.Head {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pending[room]; p != nil && p.Seq == lastSeq {
		return p
	}
	if e := r.cache[room]; e != nil && e.head != nil && e.head.Seq == lastSeq {
		return e.head
	}
	return nil
}

func (r *Rooms) setPending(room id.RoomID, h *rooms.Head) {
	r.mu.Lock()
	r.pending[room] = h
	r.mu.Unlock()
}

// dropPending forgets h once its transaction has ended, unless a later
// writer has put its own head there already.
func (r *Rooms) dropPending(room id.RoomID, h *rooms.Head) {
	r.mu.Lock()
	if r.pending[room] == h {
		delete(r.pending, room)
	}
	r.mu.Unlock()
}

func (r *Rooms) cachedHead(room id.RoomID) *rooms.Head {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.cache[room]; e != nil {
		return e.head
	}
	return nil
}

// maxCachedRooms bounds the head cache; past it an arbitrary room is
// dropped (and reloaded from the database when next needed).
const maxCachedRooms = 20000

// storeHead replaces the cached head unless a later commit got there first.
func (r *Rooms) storeHead(room id.RoomID, e *roomEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.cache[room]; old != nil && old.head != nil && e.head != nil && old.head.Seq > e.head.Seq {
		return
	}
	if _, ok := r.cache[room]; !ok && len(r.cache) >= maxCachedRooms {
		for k := range r.cache {
			delete(r.cache, k)
			break
		}
	}
	r.cache[room] = e
}

// Head implements rooms.RoomReader.
func (r *Rooms) Head(ctx context.Context, room id.RoomID) (*rooms.Head, error) {
	if h := r.cachedHead(room); h != nil {
		return h, nil
	}
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	h, err := r.loadHead(ctx, r.pool, room, e.nid, e.version)
	if err != nil {
		return nil, err
	}
	r.storeHead(room, &roomEntry{nid: e.nid, version: e.version, head: h})
	return h, nil
}

// room returns a room's nid and version.
func (r *Rooms) room(ctx context.Context, room id.RoomID) (*roomEntry, error) {
	r.mu.Lock()
	e := r.cache[room]
	r.mu.Unlock()
	if e != nil {
		return e, nil
	}
	var nid int64
	var ver string
	err := r.pool.QueryRow(ctx, selectRoom, room).Scan(&nid, &ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rooms.ErrRoomNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up room %s: %w", room, err)
	}
	v, ok := roomversion.Lookup(roomversion.ID(ver))
	if !ok {
		return nil, fmt.Errorf("room %s has unknown version %q", room, ver)
	}
	return &roomEntry{nid: nid, version: v}, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const (
	selectHead = `
SELECT last_seq, extremities,
       (SELECT COALESCE(max(e.topo), 0) FROM events e WHERE e.room_nid = $1 AND e.seq = ANY(r.extremities))
FROM rooms r WHERE room_nid = $1`
	selectCurrentState = `
SELECT e.event_json, e.redacted_by IS NOT NULL, e.event_id FROM current_state c
JOIN events e ON e.room_nid = c.room_nid AND e.seq = c.seq WHERE c.room_nid = $1`
	selectEventsBySeq = `
SELECT event_json, redacted_by IS NOT NULL, event_id FROM events WHERE room_nid = $1 AND seq = ANY($2)`
)

// loadHead reads a room's head from the database.
func (r *Rooms) loadHead(ctx context.Context, q querier, room id.RoomID, nid int64, v roomversion.Version) (*rooms.Head, error) {
	h := &rooms.Head{RoomID: room, Version: v, State: rooms.State{}}
	var extremities []int64
	if err := q.QueryRow(ctx, selectHead, nid).Scan(&h.Seq, &extremities, &h.Topo); err != nil {
		return nil, fmt.Errorf("read head of %s: %w", room, err)
	}
	state, err := scanEvents(ctx, q, v, selectCurrentState, nid)
	if err != nil {
		return nil, fmt.Errorf("read current state of %s: %w", room, err)
	}
	for _, ev := range state {
		h.State[auth.StateKey{Type: ev.Type(), StateKey: *ev.StateKey()}] = ev
	}
	if h.Extremities, err = scanEvents(ctx, q, v, selectEventsBySeq, nid, extremities); err != nil {
		return nil, fmt.Errorf("read extremities of %s: %w", room, err)
	}
	return h, nil
}

// scanEvents runs a query of (event_json, redacted) rows and parses them,
// redacted where a redaction applies. A query with the event id as a
// third column has its events parsed without hashing them again
// (event.ParseStored).
func scanEvents(ctx context.Context, q querier, v roomversion.Version, sql string, args ...any) ([]*event.Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	withID := len(rows.FieldDescriptions()) == 3
	var out []*event.Event
	for rows.Next() {
		var raw []byte
		var redacted bool
		var eventID id.EventID
		var ev *event.Event
		var err error
		if withID {
			if err := rows.Scan(&raw, &redacted, &eventID); err != nil {
				return nil, err
			}
			ev, err = event.ParseStored(v, raw, eventID)
		} else {
			if err := rows.Scan(&raw, &redacted); err != nil {
				return nil, err
			}
			ev, err = event.Parse(v, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("stored event does not parse: %w", err)
		}
		if redacted {
			ev = ev.Redacted()
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

const (
	selectKeyNid = `SELECT key_nid FROM state_keys WHERE event_type = $1 AND state_key = $2`
	insertKeyNid = `
INSERT INTO state_keys (event_type, state_key) VALUES ($1, $2)
ON CONFLICT (event_type, state_key) DO NOTHING RETURNING key_nid`
)

// keyNid interns a (type, state key) pair. Pairs read or created in tx go
// into learned, and into the store's map only once tx has committed: a
// rolled-back insert must not leave a nid behind.
func (r *Rooms) keyNid(ctx context.Context, tx pgx.Tx, learned map[auth.StateKey]int64, eventType, stateKey string) (int64, error) {
	k := auth.StateKey{Type: eventType, StateKey: stateKey}
	r.mu.Lock()
	nid, ok := r.keys[k]
	r.mu.Unlock()
	if ok {
		return nid, nil
	}
	err := tx.QueryRow(ctx, insertKeyNid, eventType, stateKey).Scan(&nid)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, selectKeyNid, eventType, stateKey).Scan(&nid)
	}
	if err != nil {
		return 0, fmt.Errorf("intern state key (%s, %q): %w", eventType, stateKey, err)
	}
	learned[k] = nid
	return nid, nil
}
