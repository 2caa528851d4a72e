package queue

import (
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/id"
)

// sender is one destination's loop: it sends one transaction at a time
// and, after a failure, waits out the backoff before the next attempt.
type sender struct {
	q    *Queue
	dest id.ServerName
	// wake: new work may wait. reset: the destination called us, it is up.
	wake, reset chan struct{}

	// Owned by the run goroutine (Start sets them before the first wake).
	failures int
	retryAt  time.Time
}

func (s *sender) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) run() {
	defer s.q.wg.Done()
	for {
		select {
		case <-s.q.ctx.Done():
			return
		case <-s.wake:
		case <-s.reset:
			s.clearBackoff()
		}
		s.drain()
	}
}

// drain sends until nothing waits, waiting out the backoff between failed
// attempts.
func (s *sender) drain() {
	q := s.q
	for {
		if wait := s.retryAt.Sub(q.cfg.Now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-q.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-s.reset:
				t.Stop()
				s.clearBackoff()
			}
		}
		more, err := s.attempt()
		if q.ctx.Err() != nil {
			return
		}
		if err != nil {
			s.fail(err)
			continue
		}
		if !more {
			return
		}
	}
}

// attempt sends the transaction in flight, or the next one; false when
// nothing waited.
func (s *sender) attempt() (bool, error) {
	q := s.q
	ctx := q.ctx
	now := q.cfg.Now()
	txn, err := q.store.NextTxn(ctx, s.dest, BuildParams{Origin: q.cfg.ServerName, TxnID: q.nextTxnID(),
		CatchUpThreshold: q.cfg.CatchUpThreshold, Now: now, Node: q.txnPrefix, LeaseUntil: now.Add(leaseFor)})
	var busy *BusyError
	if errors.As(err, &busy) {
		// Not a failure of the destination: wait, then look again. A
		// node releases its lease when it has nothing left to send, so
		// a leased destination is looked at again soon.
		s.retryAt = busy.Until
		if busy.Leased {
			s.retryAt = minTime(busy.Until, now.Add(leaseRecheck))
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if txn == nil {
		q.metrics.depth(s.dest, 0)
		return false, nil
	}
	q.metrics.depth(s.dest, txn.Pending)
	body := &TxnBody{Origin: q.cfg.ServerName, OriginServerTS: q.cfg.Now().UnixMilli(), PDUs: txn.PDUs, EDUs: txn.EDUs}
	if body.PDUs == nil {
		body.PDUs = []json.RawMessage{}
	}
	resp, err := q.transport.SendTransaction(ctx, s.dest, txn.ID, body)
	var perm *PermanentError
	switch {
	case errors.As(err, &perm):
		// Retrying cannot help: drop it rather than block the destination.
		q.logger.Warn("federation queue: transaction refused, dropped",
			slog.String("destination", string(s.dest)), slog.String("txn_id", txn.ID),
			slog.Int("pdus", len(txn.PDUs)), slog.Int("edus", len(txn.EDUs)), slog.String("error", err.Error()))
		q.metrics.failed(s.dest, true)
	case err != nil:
		return false, err
	default:
		for eventID, r := range resp.PDUs {
			if r.Error != "" {
				q.logger.Debug("federation queue: PDU refused by destination",
					slog.String("destination", string(s.dest)), slog.String("event_id", eventID),
					slog.String("error", r.Error))
			}
		}
		q.metrics.sent(s.dest, len(txn.PDUs), len(txn.EDUs), txn.CatchUp)
	}
	if err := q.store.AckTxn(ctx, s.dest, txn.ID); err != nil {
		return false, err
	}
	s.failures, s.retryAt = 0, time.Time{}
	return true, nil
}

// fail records a failed attempt and schedules the next one.
func (s *sender) fail(err error) {
	q := s.q
	s.failures++
	backoff := q.cfg.BackoffInitial
	for i := 1; i < s.failures && backoff < q.cfg.BackoffMax; i++ {
		backoff *= 2
	}
	backoff = min(backoff, q.cfg.BackoffMax)
	var wait *RetryAfterError
	if errors.As(err, &wait) && wait.After > backoff {
		backoff = wait.After
	}
	s.retryAt = q.cfg.Now().Add(backoff)
	q.metrics.failed(s.dest, false)
	q.logger.Info("federation queue: destination failed, backing off",
		slog.String("destination", string(s.dest)), slog.Int("failures", s.failures),
		slog.Duration("retry_in", backoff), slog.String("error", err.Error()))
	if err := q.store.SetBackoff(q.ctx, s.dest, s.failures, s.retryAt); err != nil && q.ctx.Err() == nil {
		q.logger.Error("federation queue: persist backoff", slog.String("destination", string(s.dest)),
			slog.String("error", err.Error()))
	}
}

// clearBackoff ends the wait: the destination is up.
func (s *sender) clearBackoff() {
	if s.failures == 0 && s.retryAt.IsZero() {
		return
	}
	s.failures, s.retryAt = 0, time.Time{}
	q := s.q
	if err := q.store.SetBackoff(q.ctx, s.dest, 0, time.Time{}); err != nil && q.ctx.Err() == nil {
		q.logger.Error("federation queue: clear backoff", slog.String("destination", string(s.dest)),
			slog.String("error", err.Error()))
	}
}

// leaseRecheck is how often a destination leased by another node is
// looked at again.
const leaseRecheck = 2 * time.Second

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
