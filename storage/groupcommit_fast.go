package storage

// The pipelined path of the group commit (issue #9, docs/performance.md
// "Group commit, pipelined").
//
// Most sends are message events: no state, no redaction, one event built
// on the room's head. For them the whole batch is one statement, one round
// trip and one flush, whatever its size:
//
//   - each request builds, hashes and signs its event on the room's cached
//     head in its own goroutine, before it queues (Rooms.prebuild): the
//     CPU part runs on every core, off the connection;
//   - the committer chains the requests of one room: the first is kept when
//     it was built on the head that is still cached, the others are rebuilt
//     on the event before them (in the committer; a client retry of a
//     transaction id already in the batch, or a request whose rebuild fails
//     or turns out to need the locked path, leaves the chain and goes to
//     that path);
//   - one statement (commitFastBatch) takes the batch's room row locks in
//     room id order, keeps the rooms whose last_seq is still the head the
//     chain was built on and none of whose transaction ids was used
//     meanwhile (another node, a federation write, a retry), and for those
//     rooms only moves the head, records the transaction ids, takes the
//     stream positions of the events it writes from the sequence (after
//     the room locks, in batch order; stream_frontier.go's begin) and
//     inserts the events. It runs as an implicit transaction: its COMMIT
//     is the flush that acknowledges the batch, and no lock outlives it,
//     so the statements of several batches flush together. It runs on its
//     generic plan (genericPlan, sent before it in the same round trip):
//     planned once per connection, not at every batch.
//
// The requests of rooms that failed the condition, and every request that
// is not a plain message (state, redactions, builds that failed on the
// cached head, rooms not cached yet), run on the savepoint path of
// groupcommit.go, which locks first and builds under the lock — the
// authoritative answer for a send whose auth fails on the cached head.

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// commitFastBatch persists a batch of prebuilt message events. Per room
// ($1 nids, $2 the last_seq the chain was built on, $3 its new last_seq);
// per transaction id ($4 user, $5 device, $6 txn id, $7 room, $8 event,
// $9 created_ts); per event, in batch order ($10 room, $11 seq, $12 event
// id, $13 type, $14 sender, $15 origin_ts, $16 txn device, $17 txn id,
// $18 the PDU, $19 topo). It returns the rooms written and the stream
// positions of their events, ascending in batch order (p takes them once
// ok holds the room locks).
const commitFastBatch = `
WITH x AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS x(nid, expect, last)),
lk AS MATERIALIZED (SELECT room_nid, last_seq, snapshot_nid FROM rooms WHERE room_nid = ANY($1::bigint[])
       ORDER BY room_id COLLATE "C" FOR UPDATE),
t AS (SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
      AS t(u, d, id, nid, ev)),
used AS (SELECT t.nid FROM t, LATERAL (SELECT 1 FROM client_txns c
                                        WHERE c.user_id = t.u AND c.device_id = t.d AND c.txn_id = t.id LIMIT 1) c),
ok AS MATERIALIZED (SELECT x.nid, x.last, lk.snapshot_nid FROM x JOIN lk ON lk.room_nid = x.nid AND lk.last_seq = x.expect
       WHERE x.nid NOT IN (SELECT nid FROM used)),
rm AS (UPDATE rooms r SET last_seq = ok.last, extremities = ARRAY[ok.last] FROM ok WHERE r.room_nid = ok.nid),
tx AS (INSERT INTO client_txns (user_id, device_id, txn_id, room_nid, event_id, created_ts)
       SELECT t.u, t.d, t.id, t.nid, t.ev, $9 FROM t JOIN ok ON ok.nid = t.nid),
u AS (SELECT e.*, ok.snapshot_nid, row_number() OVER (ORDER BY e.ord) AS rn
      FROM unnest($10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[], $15::bigint[],
                  $16::text[], $17::text[], $18::bytea[], $19::bigint[])
           WITH ORDINALITY AS e(nid, seq, event_id, event_type, sender, origin_ts, txn_device, txn_id, event_json, topo, ord)
      JOIN ok ON ok.nid = e.nid),
p AS MATERIALIZED (SELECT COALESCE(array_agg(v ORDER BY v), '{}') AS ps
      FROM (SELECT nextval('stream_pos_seq') AS v FROM generate_series(1, (SELECT count(*) FROM u))) s),
ev AS (INSERT INTO events (room_nid, seq, stream_pos, event_id, event_type, state_key, sender, membership,
                           origin_ts, snapshot_nid, replaces_seq, txn_device, txn_id, event_json, topo)
       SELECT u.nid, u.seq, p.ps[u.rn], u.event_id, u.event_type, NULL, u.sender, NULL,
              u.origin_ts, u.snapshot_nid, NULL, u.txn_device, u.txn_id, u.event_json, u.topo
       FROM u, p)
SELECT ARRAY(SELECT nid FROM ok), (SELECT ps FROM p)`

// genericPlan makes the batch statement that follows it in the same
// implicit transaction (one pipeline, one Sync) run on its prepared
// statement's generic plan, planned once per connection. Left to choose,
// PostgreSQL plans this statement anew at every execution (a custom plan
// for arrays of one room looks cheaper than the generic plan's estimate
// of ten), and planning its eleven CTEs cost more than running them:
// with pgbench on a durable PostgreSQL here, 0.84–0.97 ms a statement
// against 0.51–0.52 ms with the generic plan (load average 3), on the
// path of every acknowledged send. The setting is local to the
// transaction: the connection goes back to the pool as it was.
const genericPlan = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// prebuild builds a request's events on the room's cached head, in the
// request's goroutine. It leaves j for the locked path (builtOn nil) when
// the room is not cached, a build fails (the cached head may be stale: the
// locked path gives the answer), or an event is state or a redaction
// (those write state snapshots, current state and redaction marks).
func (r *Rooms) prebuild(j *groupJob) {
	if j.req.NewRoom != nil || len(j.req.Build) == 0 {
		return
	}
	r.mu.Lock()
	e := r.cache[j.req.RoomID]
	r.mu.Unlock()
	if e == nil || e.head == nil {
		return
	}
	if evs, h := buildMessages(e.head, j.req.Build); h != nil {
		j.builtOn, j.entry, j.evs, j.head = e.head, e, evs, h
	}
}

// buildMessages builds one request's events on a copy of on. It returns a
// nil head when a build fails or an event is not a plain message.
func buildMessages(on *rooms.Head, build []rooms.BuildFunc) ([]*event.Event, *rooms.Head) {
	h := *on
	evs := make([]*event.Event, 0, len(build))
	for _, b := range build {
		ev, err := b(&h)
		if err != nil || ev.IsState() || ev.Type() == auth.TypeRedaction {
			return nil, nil
		}
		evs = append(evs, ev)
		h.Extremities, h.Topo = []*event.Event{ev}, topoAbove(h.Topo, ev)
		h.Seq++
	}
	return evs, &h
}

// txnOf is a request's transaction key, or the zero key.
func txnOf(j *groupJob) rooms.TxnKey {
	if j.req.Txn == nil {
		return rooms.TxnKey{}
	}
	return *j.req.Txn
}

// commitFast persists prebuilt jobs with one statement; what it cannot
// take goes to the savepoint path.
func (r *Rooms) commitFast(jobs []*groupJob) {
	order := append([]*groupJob(nil), jobs...)
	sort.SliceStable(order, func(a, b int) bool { return order[a].req.RoomID < order[b].req.RoomID })
	var (
		locked []*groupJob // for the savepoint path
		chains = map[id.RoomID][]*groupJob{}
		heads  = map[id.RoomID]*rooms.Head{} // the head each room's chain ends at
		bases  = map[id.RoomID]*rooms.Head{} // the head each chain starts from
		txns   = map[rooms.TxnKey]bool{}
	)
	for _, j := range order {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		room := j.req.RoomID
		if t := txnOf(j); t.TxnID != "" {
			if txns[t] {
				// A retry of a request in this batch: the savepoint path,
				// after this batch, returns the first one's event.
				locked = append(locked, j)
				continue
			}
			txns[t] = true
		}
		on, ok := heads[room]
		if !ok {
			if on = r.cachedHead(room); on == nil {
				locked = append(locked, j)
				continue
			}
			bases[room] = on
		}
		if j.builtOn != on {
			evs, h := buildMessages(on, j.req.Build)
			if h == nil {
				locked = append(locked, j)
				continue
			}
			j.builtOn, j.evs, j.head = on, evs, h
		}
		heads[room] = j.head
		chains[room] = append(chains[room], j)
	}
	if len(chains) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		written, err := r.runFast(ctx, order, chains, bases, heads)
		cancel()
		for room, chain := range chains {
			if err == nil && written[room] {
				continue
			}
			for _, j := range chain {
				j.out, j.builtOn = nil, nil
				locked = append(locked, j)
			}
		}
	}
	if len(locked) > 0 {
		r.commitGroup(locked)
	}
}

// runFast sends one batch statement for the chains; it returns the rooms
// whose chains committed, with every job of them answered.
func (r *Rooms) runFast(ctx context.Context, order []*groupJob, chains map[id.RoomID][]*groupJob,
	bases, heads map[id.RoomID]*rooms.Head) (map[id.RoomID]bool, error) {
	var (
		nids, expect, last     []int64
		tUser, tDev, tID, tEv  []string
		tNid                   []int64
		eNid, eSeq, eTS, eTopo []int64
		eID, eType, eSender    []string
		eTxnDev, eTxnID        []*string
		eRaw                   [][]byte
		byNid                  = map[int64]id.RoomID{}
		inChain                = map[*groupJob]bool{}
	)
	for room, chain := range chains {
		nid := chain[0].entry.nid
		byNid[nid] = room
		nids, expect, last = append(nids, nid), append(expect, bases[room].Seq), append(last, heads[room].Seq)
		for _, j := range chain {
			inChain[j] = true
		}
	}
	for _, j := range order {
		if !inChain[j] {
			continue
		}
		nid := j.entry.nid
		topo := j.builtOn.Topo // as buildMessages placed them
		for i, ev := range j.evs {
			topo = topoAbove(topo, ev)
			var dev, txn *string
			if t := j.req.Txn; t != nil && i == 0 {
				d := string(t.Device)
				dev, txn = &d, &t.TxnID
				tUser, tDev, tID = append(tUser, string(t.User)), append(tDev, d), append(tID, t.TxnID)
				tNid, tEv = append(tNid, nid), append(tEv, string(ev.EventID()))
			}
			eNid, eSeq = append(eNid, nid), append(eSeq, j.builtOn.Seq+int64(i)+1)
			eID, eType, eSender = append(eID, string(ev.EventID())), append(eType, ev.Type()), append(eSender, string(ev.Sender()))
			eTS, eTopo = append(eTS, ev.OriginServerTS()), append(eTopo, topo)
			eTxnDev, eTxnID, eRaw = append(eTxnDev, dev), append(eTxnID, txn), append(eRaw, ev.Raw())
		}
	}
	// The statement's positions are in flight from before it is sent
	// until it has returned: its implicit transaction has then committed
	// or rolled back.
	res := r.stream.begin()
	// Ended by finish below; this only ends it if a panic (recovered by
	// the leader's request) leaves before finish, lest the frontier stop.
	defer res.end()
	var okNids, positions []int64
	batch := &pgx.Batch{}
	batch.Queue(genericPlan)
	batch.Queue(commitFastBatch, nids, expect, last,
		tUser, tDev, tID, tNid, tEv, nowMS(),
		eNid, eSeq, eID, eType, eSender, eTS, eTxnDev, eTxnID, eRaw, eTopo).QueryRow(func(row pgx.Row) error {
		return row.Scan(&okNids, &positions)
	})
	// Close returns once the pipeline's Sync has been answered: the
	// implicit transaction has committed (and been flushed) or failed.
	err := r.pool.SendBatch(ctx, batch).Close()
	if err != nil {
		res.finish(nil)
		return nil, err
	}
	res.finish(positions)
	written := make(map[id.RoomID]bool, len(okNids))
	for _, nid := range okNids {
		written[byNid[nid]] = true
	}
	// The positions follow the written rooms' events in batch order.
	k := 0
	for _, j := range order {
		if !inChain[j] || !written[j.req.RoomID] {
			continue
		}
		j.out = make([]rooms.Persisted, len(j.evs))
		for i, ev := range j.evs {
			if k >= len(positions) {
				return nil, errors.New("group commit: fewer stream positions than events written")
			}
			j.out[i] = rooms.Persisted{Event: ev, EventID: ev.EventID(), Seq: j.builtOn.Seq + int64(i) + 1, StreamPos: positions[k]}
			k++
		}
	}
	for room := range written {
		r.group.fast.Add(int64(len(chains[room])))
		e := chains[room][0].entry
		r.storeHead(room, &roomEntry{nid: e.nid, version: e.version, head: heads[room]})
	}
	return written, nil
}
