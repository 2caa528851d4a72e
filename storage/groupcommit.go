package storage

// Group commit of local sends (issue #9, docs/performance.md "Group
// commit").
//
// One flush per event caps the sends at ≈ 1 / (fdatasync + round trip) per
// connection. Here the sends that arrive while batches are being committed
// are gathered and persisted in one transaction: each request in its own
// savepoint (an auth error, a deduplicated transaction id or a missing room
// fails that request only), the events inserted with stream_pos 0, and the
// batch's last statement gives them the stream positions reserved for the
// batch, under its room locks (stream_frontier.go). One flush then
// acknowledges the whole batch; a send is still answered only after its
// commit, and only once every position below its own is committed too.
// Several batches (of different rooms) commit at once: no lock outlives a
// batch's statements but its rooms', so their flushes overlap.
//
// Lock order: the requests of a batch are sorted by room, so two batches
// or two nodes sharing one database take room row locks in the same order:
// no lock cycle. A batch that fails as a whole (the final statement,
// COMMIT, a broken connection) has rolled back entirely; its requests are
// then run one by one on the single-request path, so a batch never fails a
// request that would have succeeded alone.

import (
	"context"
	"errors"
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

// assignPositions gives the batch's events (parallel arrays in commit
// order) the stream positions reserved for them ($1, ascending), and
// moves the membership rows the batch wrote to their events' positions.
const assignPositions = `
WITH u AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(pos, room_nid, seq)),
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

// maxBatchesInFlight bounds the batches committing at once. Positions
// are not locked across a commit (stream_frontier.go), so batches could
// flush at once and PostgreSQL merge them; but more batches in flight
// means smaller ones (more statements and flushes for the same
// messages), and an answer still waits for every earlier position. At
// low load one batch at a time is the fastest (16 senders, separate
// rooms: 3,052–3,056 sends/s with 1, 2,004–2,408 with 2, 1,861–2,110
// with 4; docs/performance.md "Sends, positions without a lock"); other
// writers (single sends, federation) still overlap with it.
const maxBatchesInFlight = 1

// groupCommitter gathers the Append requests that arrive while batches are
// being committed, and starts a batch whenever fewer than
// maxBatchesInFlight are. A room is in at most one batch at a time: its
// requests wait in the queue, in order, while a batch holds it, so that
// its next batch builds on the head the last one committed.
type groupCommitter struct {
	mu       sync.Mutex
	queue    []*groupJob
	inFlight int
	busy     map[id.RoomID]bool
	// paused holds every batch back (tests: PauseGroupCommit).
	paused bool
	// extraInFlight raises maxBatchesInFlight (tests that hold one batch
	// while another commits: SetBatchesInFlight).
	extraInFlight int

	// fast and locked count the requests committed by the pipelined
	// statement and those that took the savepoint path, leaders the
	// batches run by a request's own goroutine (tests, profiles).
	fast, locked, leaders atomic.Int64
}

// append queues req and returns once its batch has committed. When no
// batch is running (a quiet server: every send), the request's own
// goroutine takes the queue and commits it, as the leader of its batch:
// no goroutine is started and none woken between the request and its
// statement, nor between the commit and the answer (each a scheduler
// hop, worth most on a busy machine). Batches that queue behind it get
// goroutines of their own (dispatch), so a leader commits one batch only.
func (g *groupCommitter) append(ctx context.Context, r *Rooms, req rooms.AppendRequest) ([]rooms.Persisted, error) {
	j := &groupJob{ctx: ctx, req: req, done: make(chan struct{})}
	r.prebuild(j)
	g.mu.Lock()
	g.queue = append(g.queue, j)
	lead := g.take()
	g.dispatch(r)
	g.mu.Unlock()
	if lead != nil {
		g.leaders.Add(1)
		g.run(r, lead)
	}
	select {
	case <-j.done:
		if j.err != nil {
			return j.out, j.err
		}
		if err := r.visible(ctx, j.out); err != nil {
			return nil, err
		}
		return j.out, nil
	case <-ctx.Done():
		// The request may still commit with its batch, as a request whose
		// client went away during COMMIT does.
		return nil, ctx.Err()
	}
}

// dispatch starts batches, each on a goroutine of its own, while take
// gives one; g.mu held.
func (g *groupCommitter) dispatch(r *Rooms) {
	for jobs := g.take(); jobs != nil; jobs = g.take() {
		go g.run(r, jobs)
	}
}

// take returns the next batch and counts it in flight, or nil when
// maxBatchesInFlight run already or every queued request's room is held
// by a running batch; g.mu held. The caller runs the batch.
func (g *groupCommitter) take() []*groupJob {
	if g.paused || g.inFlight >= maxBatchesInFlight+g.extraInFlight || len(g.queue) == 0 {
		return nil
	}
	var jobs, rest []*groupJob
	for _, j := range g.queue {
		if len(jobs) < maxGroup && !g.busy[j.req.RoomID] {
			jobs = append(jobs, j)
		} else {
			rest = append(rest, j)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if g.busy == nil {
		g.busy = map[id.RoomID]bool{}
	}
	for _, j := range jobs {
		g.busy[j.req.RoomID] = true
	}
	g.queue = rest
	g.inFlight++
	return jobs
}

// run commits one batch, then lets the rooms it held go to the next.
// A panic while committing fails every request of the batch (one of them
// may have been answered as stored by a transaction that then rolled
// back; a client's retry of its transaction id finds the event if it was
// committed) and releases the batch's rooms before it goes on up: run by
// a leader, it reaches the request's own recovery, and the committer must
// not stay wedged behind it.
func (g *groupCommitter) run(r *Rooms, jobs []*groupJob) {
	finished := false
	defer func() {
		if !finished {
			for _, j := range jobs {
				j.out, j.err = nil, errBatchPanicked
			}
		}
		g.mu.Lock()
		for _, j := range jobs {
			delete(g.busy, j.req.RoomID)
		}
		g.inFlight--
		g.dispatch(r)
		g.mu.Unlock()
		for _, j := range jobs {
			close(j.done)
		}
	}()
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
	finished = true
}

// errBatchPanicked is the answer of the requests of a batch whose commit
// panicked.
var errBatchPanicked = errors.New("group commit: the batch failed")

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
		// Reserved last, under every room lock of the batch and after
		// its current_state writes (sql/0016's floor_pos); in flight
		// until the transaction has ended.
		res, err := r.stream.reserve(ctx, tx, len(seqs))
		if err != nil {
			return err
		}
		defer res.end()
		pos := make(map[[2]int64]int64, len(seqs))
		rows, err := tx.Query(ctx, assignPositions, res.positions, nids, seqs)
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
