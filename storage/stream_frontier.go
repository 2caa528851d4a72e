package storage

// The committed-up-to frontier of the stream (sql/0025; docs/performance.md
// "Sends, positions without a lock").
//
// Stream positions come from a sequence, reserved by each writing
// transaction just before its positioning statement, and no lock is held
// from the reservation to the commit: several transactions flush at once.
// So a transaction may commit after one that reserved greater positions.
// A reader that read up to the greater one would never read the smaller
// one, committed later (the gap problem). Readers therefore read only up
// to the frontier: the greatest position at or below which no reservation
// of this process is still in flight. Every writer of the process
// reserves here, and a reservation ends when its transaction has
// committed or rolled back. Appends answer only once the frontier has
// passed their positions, so what was acknowledged (and notified) is
// readable, and wake-ups arrive in frontier order.
//
// The frontier covers this process's writers. When none is in flight it
// also takes in the database's highest reserved position, so that another
// process's committed writes (a second store in the tests, a tool) become
// readable; a second process writing while this one reads at the same
// moment could have a reservation passed. A cluster of writers needs each
// node's frontier published on the bus (the least of them is safe).

import (
	"context"
	"fmt"
	"sync"
)

const (
	// reservePositions takes n positions. The sequence (CACHE 1) hands
	// values out in call order, so every value returned is greater than
	// every value returned before the call.
	reservePositions   = `SELECT nextval('stream_pos_seq') FROM generate_series(1, $1::int)`
	selectReservedHigh = `SELECT pos FROM stream_position`
)

// streamFrontier tracks the reservations in flight in this process.
type streamFrontier struct {
	mu sync.Mutex
	// high: every position at or below it was handed out to a
	// reservation that has registered its positions, or was read from
	// the database while nothing was in flight here.
	high int64
	// live are the reservations not ended yet.
	live map[*reservation]struct{}
	// begun counts reservations begun, so that a read of the database
	// that overlapped one is not taken in.
	begun uint64
	// advanced is closed (and replaced) when the frontier moves.
	advanced chan struct{}
	// observe, when set (tests), hears of every reservation once its
	// positions are taken (nil for a begun one, whose statement takes
	// them) and again once it has ended.
	observe func(positions []int64, ended bool)
}

// reservation is one transaction's positions, in ascending order.
type reservation struct {
	f         *streamFrontier
	positions []int64
	// below: every position of this reservation is greater. While the
	// positions are being taken it is the high mark of the moment the
	// reservation began; then the first position less one.
	below int64
	ended bool
}

func newStreamFrontier() *streamFrontier {
	return &streamFrontier{live: map[*reservation]struct{}{}, advanced: make(chan struct{})}
}

// frontierLocked is the frontier; f.mu held.
func (f *streamFrontier) frontierLocked() int64 {
	fr := f.high
	for r := range f.live {
		fr = min(fr, r.below)
	}
	return fr
}

// moved wakes the waiters when the frontier passed from.
func (f *streamFrontier) moved(from int64) {
	if f.frontierLocked() > from {
		close(f.advanced)
		f.advanced = make(chan struct{})
	}
}

// reserve takes n positions on q (the writing transaction, or the pool
// for a one-statement transaction sent next) and puts them in flight
// until end. Call it after the room row locks are held and current_state
// is written (sql/0016's floor_pos), and end the reservation only once
// the transaction has committed or rolled back.
func (f *streamFrontier) reserve(ctx context.Context, q querier, n int) (*reservation, error) {
	f.mu.Lock()
	r := &reservation{f: f, below: f.high}
	f.live[r] = struct{}{}
	f.begun++
	f.mu.Unlock()
	rows, err := q.Query(ctx, reservePositions, n)
	if err == nil {
		for rows.Next() {
			var p int64
			if err = rows.Scan(&p); err != nil {
				break
			}
			r.positions = append(r.positions, p)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err == nil && len(r.positions) != n {
		err = fmt.Errorf("%d positions reserved of %d", len(r.positions), n)
	}
	if err != nil {
		r.positions = nil
		r.end()
		return nil, fmt.Errorf("reserve stream positions: %w", err)
	}
	f.mu.Lock()
	from := f.frontierLocked()
	r.below = r.positions[0] - 1
	f.high = max(f.high, r.positions[n-1])
	f.moved(from)
	f.mu.Unlock()
	if f.observe != nil {
		f.observe(r.positions, false)
	}
	return r, nil
}

// end takes the reservation out of flight: its transaction has committed
// or rolled back (a rolled-back reservation leaves a gap, which readers
// never wait for). A nil or ended reservation is a no-op.
func (r *reservation) end() {
	if r == nil {
		return
	}
	f := r.f
	f.mu.Lock()
	if r.ended {
		f.mu.Unlock()
		return
	}
	from := f.frontierLocked()
	r.ended = true
	delete(f.live, r)
	f.moved(from)
	f.mu.Unlock()
	if f.observe != nil && r.positions != nil {
		f.observe(r.positions, true)
	}
}

// begin puts in flight a reservation whose positions the next statement
// takes itself, with nextval after its room locks (one round trip fewer
// than reserve): every position it can get is above the high mark of
// this moment, so the frontier stays below it until finish. Positions
// of other reservations above that mark wait for it too (they cannot
// tell its positions from theirs): a little more waiting for an answer,
// never a skipped position.
func (f *streamFrontier) begin() *reservation {
	f.mu.Lock()
	r := &reservation{f: f, below: f.high}
	f.live[r] = struct{}{}
	f.begun++
	f.mu.Unlock()
	if f.observe != nil {
		f.observe(nil, false)
	}
	return r
}

// finish records the positions the statement of a begun reservation
// took (ascending; none when it failed), once its transaction has ended,
// and ends the reservation.
func (r *reservation) finish(positions []int64) {
	f := r.f
	f.mu.Lock()
	if len(positions) > 0 {
		from := f.frontierLocked()
		f.high = max(f.high, positions[len(positions)-1])
		f.moved(from)
	}
	r.positions = positions
	f.mu.Unlock()
	r.end()
}

// last is the reservation's greatest position.
func (r *reservation) last() int64 { return r.positions[len(r.positions)-1] }

// wait returns once every position up to pos is committed or abandoned.
func (f *streamFrontier) wait(ctx context.Context, pos int64) error {
	for {
		f.mu.Lock()
		fr, ch := f.frontierLocked(), f.advanced
		f.mu.Unlock()
		if fr >= pos {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// current is the frontier. With nothing in flight here it first takes in
// the database's highest reserved position (another process's writes),
// unless a reservation of this process began while it was being read.
func (f *streamFrontier) current(ctx context.Context, q querier) (int64, error) {
	f.mu.Lock()
	if len(f.live) > 0 {
		defer f.mu.Unlock()
		return f.frontierLocked(), nil
	}
	begun := f.begun
	f.mu.Unlock()
	var high int64
	if err := q.QueryRow(ctx, selectReservedHigh).Scan(&high); err != nil {
		return 0, fmt.Errorf("read stream position: %w", err)
	}
	return f.takeInHigh(begun, high), nil
}

// takeInHigh takes in high, the database's highest reserved position read
// when begun reservations had begun here, unless one began since (its
// position may be below high and not committed), and returns the
// frontier.
func (f *streamFrontier) takeInHigh(begun uint64, high int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begun == begun && high > f.high {
		from := f.frontierLocked()
		f.high = high
		f.moved(from)
	}
	return f.frontierLocked()
}

// selectReservedHighAndCounters is selectReservedHigh with the named rows
// of stream_counters, in the order of $1 (NULL for a missing row).
const selectReservedHighAndCounters = `
SELECT (SELECT pos FROM stream_position),
       array(SELECT c.pos FROM unnest($1::text[]) WITH ORDINALITY AS n(stream, ord)
             LEFT JOIN stream_counters c ON c.stream = n.stream ORDER BY n.ord)`

// selectCounters reads the named rows of stream_counters, in the order of
// $1 (NULL for a missing row).
const selectCounters = `
SELECT array(SELECT c.pos FROM unnest($1::text[]) WITH ORDINALITY AS n(stream, ord)
             LEFT JOIN stream_counters c ON c.stream = n.stream ORDER BY n.ord)`

// currentWithCounters is current, and the positions of the named stream
// counters read in the same statement: the syncs one commit wakes read
// every stream's position together (syncer.CounterPositionStore), and a
// query per stream made five round trips of each such read.
func (f *streamFrontier) currentWithCounters(ctx context.Context, q querier, counters []string) (int64, []int64, error) {
	f.mu.Lock()
	if len(f.live) > 0 {
		fr := f.frontierLocked()
		f.mu.Unlock()
		var raw []*int64
		if err := q.QueryRow(ctx, selectCounters, counters).Scan(&raw); err != nil {
			return 0, nil, fmt.Errorf("read stream counters: %w", err)
		}
		counts, err := counterValues(counters, raw)
		return fr, counts, err
	}
	begun := f.begun
	f.mu.Unlock()
	var high int64
	var raw []*int64
	if err := q.QueryRow(ctx, selectReservedHighAndCounters, counters).Scan(&high, &raw); err != nil {
		return 0, nil, fmt.Errorf("read stream positions: %w", err)
	}
	counts, err := counterValues(counters, raw)
	if err != nil {
		return 0, nil, err
	}
	return f.takeInHigh(begun, high), counts, nil
}

// counterValues checks that every named counter was read.
func counterValues(names []string, raw []*int64) ([]int64, error) {
	if len(raw) != len(names) {
		return nil, fmt.Errorf("read stream counters: %d of %d", len(raw), len(names))
	}
	out := make([]int64, len(raw))
	for i, p := range raw {
		if p == nil {
			return nil, fmt.Errorf("position of stream %s: no such counter", names[i])
		}
		out[i] = *p
	}
	return out, nil
}
