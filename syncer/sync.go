package syncer

import (
	"context"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Request is one GET /sync.
type Request struct {
	User   id.UserID
	Device id.DeviceID
	// Since is the next_batch of an earlier sync; "" for an initial sync.
	Since string
	// Filter is a filter id or an inline JSON filter ("" for none).
	Filter    string
	FullState bool
	// UseStateAfter: joined and left rooms carry state_after, the state at
	// the end of the timeline, instead of state (spec v1.16).
	UseStateAfter bool
	// Timeout is how long to wait for something to happen when nothing
	// has; 0 answers at once.
	Timeout time.Duration
	// SetPresence is "online", "offline" or "unavailable" ("" = online);
	// the presence tracker applies it.
	SetPresence string
}

// Sync answers one /sync request (spec client-server-api "Syncing"). An
// incremental sync with nothing new waits, up to the timeout, for the
// notifier to report a commit that concerns the user — one of their
// rooms, or their own membership anywhere — and then looks again.
func (s *Service) Sync(ctx context.Context, req Request) (*Response, error) {
	switch req.SetPresence {
	case "", "online", "offline", "unavailable":
	default:
		return nil, mxerr.InvalidParam.Msg("set_presence must be online, offline or unavailable")
	}
	if s.tracker != nil && s.tracker.SyncStarted(req.User, req.SetPresence) {
		defer s.tracker.SyncEnded(req.User)
	}
	filter, err := s.resolveFilter(ctx, req.User, req.Filter)
	if err != nil {
		return nil, err
	}
	var since Token
	initial := req.Since == ""
	if !initial {
		if since, err = ParseToken(req.Since); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(min(max(req.Timeout, 0), s.cfg.MaxTimeout))
	for {
		at, err := s.positions(ctx)
		if err != nil {
			return nil, err
		}
		pos := at.Pos(StreamTimeline)
		if since.Pos(StreamTimeline) > pos {
			return nil, mxerr.UnknownPos.Msg("since: the sync token is ahead of this server")
		}
		at = s.keepUnsourced(at, since)
		if !initial && !req.FullState && at == since {
			// Nothing at all since the client's token: wait first.
			resp, err := s.waitIdle(ctx, req, filter, at, deadline)
			if err != nil || resp != nil {
				return resp, err
			}
			continue
		}
		b := &builder{s: s, req: req, filter: filter, since: since, initial: initial, pos: pos, at: at}
		resp, err := b.build(ctx)
		if err != nil {
			return nil, err
		}
		s.joinedCache.put(req.User, pos, b.joined)
		if !resp.empty || initial || req.FullState || !time.Now().Before(deadline) {
			return resp, nil
		}
		// Nothing relevant up to at in any stream: wait for a change past
		// it, then sync again from at (what lies before it is known to be
		// empty). On time-out the answer is that of the empty range from
		// at, read after the wait (the key counts may have changed).
		since = at
		resp, err = s.waitIdle(ctx, req, filter, at, deadline)
		if err != nil || resp != nil {
			return resp, err
		}
	}
}
