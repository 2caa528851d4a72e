package storage

import "time"

// PauseGroupCommit makes the next Append requests queue without a
// committer until resume is called; the committer then takes them as one
// batch (at most maxGroup). It waits for a running batch to finish first.
func (r *Rooms) PauseGroupCommit() (resume func()) {
	g := &r.group
	for {
		g.mu.Lock()
		if !g.running {
			g.running = true
			g.mu.Unlock()
			return func() { go g.loop(r) }
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
