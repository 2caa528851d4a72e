package storage

import "time"

// SetBatchesInFlight lets n group-commit batches commit at once (at least
// maxBatchesInFlight).
func (r *Rooms) SetBatchesInFlight(n int) {
	r.group.mu.Lock()
	r.group.extraInFlight = max(n-maxBatchesInFlight, 0)
	r.group.mu.Unlock()
}

// PauseGroupCommit makes the next Append requests queue without a batch
// starting until resume is called; the next batch then takes them (at
// most maxGroup). It waits for the running batches to finish first.
func (r *Rooms) PauseGroupCommit() (resume func()) {
	g := &r.group
	for {
		g.mu.Lock()
		if g.inFlight == 0 && !g.paused {
			g.paused = true
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				g.paused = false
				g.dispatch(r)
				g.mu.Unlock()
			}
		}
		g.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// QueuedGroup is the number of Append requests waiting for a batch.
func (r *Rooms) QueuedGroup() int {
	r.group.mu.Lock()
	defer r.group.mu.Unlock()
	return len(r.group.queue)
}

// GroupCommitPaths counts the requests committed by the pipelined
// statement and by the savepoint path.
func (r *Rooms) GroupCommitPaths() (fast, locked int64) {
	return r.group.fast.Load(), r.group.locked.Load()
}

// ObserveReservations makes r call f with the stream positions of each
// of its reservations once taken, and again (ended) once the writing
// transaction has ended. Set it before r is used concurrently.
func (r *Rooms) ObserveReservations(f func(positions []int64, ended bool)) {
	r.stream.observe = f
}

// GroupCommitLeaders counts the batches committed by the goroutine of a
// request that found no batch running.
func (r *Rooms) GroupCommitLeaders() int64 { return r.group.leaders.Load() }
