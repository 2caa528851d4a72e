package storage

// Group commit of local sends (issue #9, docs/performance.md "Group
// commit").
//
// Every persisting transaction bumps the single stream_position row and
// holds its lock until its commit has been flushed, so that stream order is
// commit order ("every event with stream_pos <= N is committed", which
// /sync and the federation fan-out rely on). One flush per event caps all
// sends of all rooms at ≈ 1 / (fdatasync + round trip). Here the sends that
// arrive while a commit is being flushed are gathered and persisted in one
// transaction: each request in its own savepoint (an auth error, a
// deduplicated transaction id or a missing room fails that request only),
// the events inserted with stream_pos 0, and the batch's last statement,
// under the stream_position row lock, numbers every event of the batch in
// order. One flush then acknowledges the whole batch; a send is still
// answered only after its commit.
//
// Lock order: the requests of a batch are sorted by room, so two nodes
// sharing one database take room row locks in the same order and
// stream_position last (as the single-request paths do): no lock cycle.
// A batch that fails as a whole (the final statement, COMMIT, a broken
// connection) has rolled back entirely; its requests are then run one by
// one on the single-request path, so a batch never fails a request that
// would have succeeded alone.

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// maxGroup bounds a batch: every request is a subtransaction, and
// PostgreSQL keeps 64 subtransaction ids per backend in shared memory
// before other sessions' snapshots get slower.
const maxGroup = 48

// assignPositions numbers the batch's events (given as parallel arrays
// in commit order) with stream positions, under the stream_position row
// lock that is then held until COMMIT, and moves the membership rows the
// batch wrote to their events' positions.
const assignPositions = `
WITH p AS (UPDATE stream_position SET pos = pos + $1 RETURNING pos),
u AS (SELECT p.pos - $1 + u.ord AS pos, u.room_nid, u.seq
      FROM p, unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(room_nid, seq, ord)),
m AS (UPDATE room_memberships rm SET stream_pos = u.pos FROM u
      WHERE rm.room_nid = u.room_nid AND rm.seq = u.seq)
UPDATE events e SET stream_pos = u.pos FROM u
WHERE e.room_nid = u.room_nid AND e.seq = u.seq
RETURNING e.room_nid, e.seq, e.stream_pos`

// groupJob is one Append request waiting for its batch.
type groupJob struct {
	ctx  context.Context
	req  rooms.AppendRequest
	nid  int64
	out  []rooms.Persisted
	err  error
	done chan struct{}

	// The pipelined path (groupcommit_fast.go): the events built on the
	// cached head builtOn (nil: the savepoint path), the head they leave,
	// and the room's cache entry.
	builtOn *rooms.Head
	evs     []*event.Event
	head    *rooms.Head
	entry   *roomEntry
}

// groupCommitter gathers the Append requests that arrive while a batch is
// being committed; one goroutine at a time runs the batches.
type groupCommitter struct {
	mu      sync.Mutex
	queue   []*groupJob
	running bool

	// fast and locked count the requests committed by the pipelined
	// statement and those that took the savepoint path (tests, profiles).
	fast, locked atomic.Int64
}

func (g *groupCommitter) append(ctx context.Context, r *Rooms, req rooms.AppendRequest) ([]rooms.Persisted, error) {
	j := &groupJob{ctx: ctx, req: req, done: make(chan struct{})}
	r.prebuild(j)
	g.mu.Lock()
	g.queue = append(g.queue, j)
	if !g.running {
		g.running = true
		go g.loop(r)
	}
	g.mu.Unlock()
	select {
	case <-j.done:
		return j.out, j.err
	case <-ctx.Done():
		// The request may still commit with its batch, as a request whose
		// client went away during COMMIT does.
		return nil, ctx.Err()
	}
}

func (g *groupCommitter) loop(r *Rooms) {
	for {
		g.mu.Lock()
		jobs := g.queue
		if len(jobs) > maxGroup {
			jobs = jobs[:maxGroup:maxGroup]
			g.queue = append([]*groupJob(nil), g.queue[maxGroup:]...)
		} else {
			g.queue = nil
		}
		if len(jobs) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		var slow, fast []*groupJob
		for _, j := range jobs {
			if j.builtOn != nil {
				fast = append(fast, j)
			} else {
				slow = append(slow, j)
			}
		}
		if len(slow) > 0 {
			r.commitGroup(slow)
		}
		if len(fast) > 0 {
			r.commitFast(fast)
		}
		for _, j := range jobs {
			close(j.done)
		}
	}
}

// commitGroup persists jobs in one transaction, or one by one when the
// batch fails as a whole.
func (r *Rooms) commitGroup(jobs []*groupJob) {
	r.group.locked.Add(int64(len(jobs)))
	order := append([]*groupJob(nil), jobs...)
	sort.SliceStable(order, func(a, b int) bool { return order[a].req.RoomID < order[b].req.RoomID })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.runGroup(ctx, order); err == nil {
		return
	}
	for _, j := range order {
		j.out, j.err = nil, nil
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		j.out, j.err = r.appendAlone(j.ctx, j.req)
	}
}

// groupFatal marks an error that broke the batch's transaction.
type groupFatal struct{ err error }

func (e groupFatal) Error() string { return e.err.Error() }

func (r *Rooms) runGroup(ctx context.Context, jobs []*groupJob) error {
	var (
		heads   = map[id.RoomID]*rooms.Head{}
		entries = map[id.RoomID]*roomEntry{}
		learned = map[auth.StateKey]int64{}
		nids    []int64
		seqs    []int64
	)
	batchHead := func(room id.RoomID, lastSeq int64) *rooms.Head {
		if h := heads[room]; h != nil && h.Seq == lastSeq {
			return h
		}
		return nil
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		st, err := r.appendSavepoint(ctx, tx, j.req, batchHead)
		if err != nil && j.req.Txn != nil && isConstraintViolation(err, "client_txns_pkey") {
			// Another node committed the same transaction id after this
			// request looked; the next look finds it.
			st, err = r.appendSavepoint(ctx, tx, j.req, batchHead)
		}
		if _, ok := err.(groupFatal); ok {
			return err
		}
		if err != nil {
			j.err = err
			continue
		}
		j.out = st.out
		for k, v := range st.learned {
			learned[k] = v
		}
		if st.head != nil {
			heads[j.req.RoomID], entries[j.req.RoomID] = st.head, st.entry
			j.nid = st.entry.nid
			for _, p := range st.out {
				nids, seqs = append(nids, j.nid), append(seqs, p.Seq)
			}
		}
	}
	if len(seqs) > 0 {
		pos := make(map[[2]int64]int64, len(seqs))
		rows, err := tx.Query(ctx, assignPositions, int64(len(seqs)), nids, seqs)
		if err != nil {
			return err
		}
		for rows.Next() {
			var nid, seq, p int64
			if err := rows.Scan(&nid, &seq, &p); err != nil {
				rows.Close()
				return err
			}
			pos[[2]int64{nid, seq}] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, j := range jobs {
			for i := range j.out {
				if !j.out[i].Deduplicated {
					j.out[i].StreamPos = pos[[2]int64{j.nid, j.out[i].Seq}]
				}
			}
		}
	}
	for room, h := range heads {
		r.setPending(room, h)
		defer r.dropPending(room, h)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	r.learn(learned)
	for room, h := range heads {
		e := entries[room]
		e.head = h
		r.storeHead(room, e)
	}
	return nil
}

// appendSavepoint runs one request of a batch in its own savepoint, rolled
// back when the request fails.
func (r *Rooms) appendSavepoint(ctx context.Context, tx pgx.Tx, req rooms.AppendRequest,
	batchHead func(id.RoomID, int64) *rooms.Head) (*appendState, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, groupFatal{err}
	}
	st := &appendState{learned: map[auth.StateKey]int64{}, unpositioned: true, batchHead: batchHead}
	if err := r.appendIn(ctx, sp, req, st); err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return nil, groupFatal{rerr}
		}
		return nil, err
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, groupFatal{err}
	}
	return st, nil
}
