package keys

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// Resyncs of remote device lists. A gap in a user's m.device_list_update
// chain drops the cached list and marks the user in the database; a
// worker fetches the list again (GET /user/devices) and retries with
// backoff, so the inbound transaction that carried the update returns at
// once however slow the user's server is. /keys/query asks a marked
// user's server directly (/user/keys/query) until the resync is done.

// Resync is a user marked for a resync and the mark's generation.
type Resync struct {
	User     id.UserID
	Gen      int64
	Failures int
}

// ResyncStore keeps the marks (sql/0018).
type ResyncStore interface {
	// MarkResync drops user's cached list and marks the user for a resync
	// due now, in one transaction (a new mark of a marked user bumps its
	// generation and makes it due now).
	MarkResync(ctx context.Context, user id.UserID) error
	// RemarkResync bumps the generation of user's mark, if any (an update
	// arrived while the list is being fetched: fetch it again); it
	// reports whether the user is marked.
	RemarkResync(ctx context.Context, user id.UserID) (bool, error)
	// DueResyncs returns up to limit marks due at now, and the time the
	// next of the others is due (zero: none).
	DueResyncs(ctx context.Context, now time.Time, limit int) ([]Resync, time.Time, error)
	// ResyncFailed records a failed attempt: the mark is due again at
	// retryAt.
	ResyncFailed(ctx context.Context, user id.UserID, failures int, retryAt time.Time) error
	// ResyncDone removes the mark unless it was made again since gen.
	ResyncDone(ctx context.Context, user id.UserID, gen int64) error
	// ResyncsPending returns those of users who are marked.
	ResyncsPending(ctx context.Context, users []id.UserID) ([]id.UserID, error)
}

// Resync worker tuning: at most resyncBatch fetches at once, retried
// after resyncBackoff doubling up to resyncBackoffMax; resyncPoll is the
// longest sleep (marks of another node).
const (
	resyncBatch      = 20
	resyncBackoff    = 2 * time.Second
	resyncBackoffMax = 30 * time.Minute
	resyncPoll       = 30 * time.Second
)

// resync marks user's cached list for a resync after a gap, for the
// worker.
func (s *Service) resync(ctx context.Context, user id.UserID) {
	s.gaps.Add(1)
	if err := s.store.MarkResync(ctx, user); err != nil {
		s.logger.WarnContext(ctx, "remote device list resync", slog.String("user_id", string(user)),
			slog.String("error", err.Error()))
		return
	}
	s.kickResyncs()
}

// Gaps counts the gaps seen in remote users' m.device_list_update chains
// since the service started (each one a resync).
func (s *Service) Gaps() int64 { return s.gaps.Load() }

func (s *Service) kickResyncs() {
	select {
	case s.resyncKick <- struct{}{}:
	default:
	}
}

// runResyncs resyncs the marked users until ctx ends.
func (s *Service) runResyncs(ctx context.Context) {
	for {
		wait := resyncPoll
		if s.remoteDevices() != nil {
			next, err := s.resyncDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "remote device list resyncs", slog.String("error", err.Error()))
			}
			if !next.IsZero() {
				wait = min(wait, max(time.Until(next), 10*time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.resyncKick:
			t.Stop()
		case <-t.C:
		}
	}
}

// resyncDue fetches the lists of the marks due now, concurrently, and
// returns when the next mark is due.
func (s *Service) resyncDue(ctx context.Context) (time.Time, error) {
	due, next, err := s.store.DueResyncs(ctx, time.Now(), resyncBatch)
	if err != nil {
		return time.Time{}, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if retry := s.resyncOne(ctx, r); !retry.IsZero() {
				mu.Lock()
				if next.IsZero() || retry.Before(next) {
					next = retry
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(due) == resyncBatch {
		return time.Now(), nil // more are due
	}
	return next, nil
}

// resyncOne fetches one marked user's list; after a failure it returns
// when to try again.
func (s *Service) resyncOne(ctx context.Context, r Resync) time.Time {
	sharing, err := s.store.SharingWithLocal(ctx, []id.UserID{r.User}, s.cfg.ServerName)
	if err == nil && len(sharing) == 0 {
		// Nobody here tracks the user any more: no list to keep.
		err = s.store.ResyncDone(ctx, r.User, r.Gen)
	} else if err == nil {
		if _, err = s.fetchDeviceList(ctx, r.User); err == nil {
			err = s.store.ResyncDone(ctx, r.User, r.Gen)
		}
	}
	if err == nil || ctx.Err() != nil {
		return time.Time{}
	}
	backoff := resyncBackoff
	for i := 0; i < r.Failures && backoff < resyncBackoffMax; i++ {
		backoff *= 2
	}
	backoff = min(backoff, resyncBackoffMax)
	s.logger.InfoContext(ctx, "remote device list resync failed", slog.String("user_id", string(r.User)),
		slog.Int("failures", r.Failures+1), slog.Duration("retry_in", backoff), slog.String("error", err.Error()))
	retry := time.Now().Add(backoff)
	if err := s.store.ResyncFailed(ctx, r.User, r.Failures+1, retry); err != nil && ctx.Err() == nil {
		s.logger.WarnContext(ctx, "remote device list resync", slog.String("error", err.Error()))
	}
	return retry
}
