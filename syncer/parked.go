package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/id"
)

// A parked long-poll is one whose wait is held by its caller rather than
// by a blocked goroutine: the HTTP edge takes an idle long-poll's
// connection over and registers a callback with the notifier, so that a
// crowd of idle clients costs neither a goroutine nor net/http's
// per-request state each (issue #9). Sync decides when to wait as always;
// with a context from ParkInstead it returns ErrParked at that point
// instead of blocking, and the Parked records the wait.

// ErrParked is Sync's answer, under a context from ParkInstead, when the
// sync would wait: its Parked holds the wait.
var ErrParked = errors.New("syncer: the long-poll is parked")

type parkKey struct{}

// Parked is the wait of a long-poll that Sync handed to its caller.
type Parked struct {
	s        *Service
	req      Request
	filter   *Filter
	at       Token
	joined   []id.RoomID
	deadline time.Time
	// tracked: the presence tracker counts this sync as open.
	tracked bool
}

// ParkInstead returns ctx for a Sync that, instead of waiting, records
// its wait in the returned Parked and returns ErrParked.
func ParkInstead(ctx context.Context) (context.Context, *Parked) {
	p := &Parked{}
	return context.WithValue(ctx, parkKey{}, p), p
}

func parkedFrom(ctx context.Context) *Parked {
	p, _ := ctx.Value(parkKey{}).(*Parked)
	return p
}

// park records the wait of waitIdle in ctx's Parked; false when ctx is
// not a parking one.
func (s *Service) park(ctx context.Context, req Request, filter *Filter, at Token, joined []id.RoomID, deadline time.Time) bool {
	p := parkedFrom(ctx)
	if p == nil {
		return false
	}
	*p = Parked{s: s, req: req, filter: filter, at: at, joined: joined, deadline: deadline, tracked: p.tracked}
	return true
}

// Deadline is when the wait times out.
func (p *Parked) Deadline() time.Time { return p.deadline }

// Register hands the wait to the notifier: fn runs once, woken or not,
// and must return at once (Notifier.Park); the caller's worker then calls
// Resume.
func (p *Parked) Register(fn func(woken bool)) {
	p.track()
	p.s.notifier.Park(p.req.User, p.joined, p.at, p.deadline, fn)
}

// Wait is the wait done by blocking, for a caller that could not hold it
// after all; it returns the answer, as Sync would have.
func (p *Parked) Wait(ctx context.Context) (*Response, error) {
	p.track()
	for {
		wctx, cancel := context.WithDeadline(ctx, p.deadline)
		woken := p.s.notifier.Wait(wctx, p.req.User, p.joined, p.at)
		cancel()
		if err := ctx.Err(); err != nil {
			p.untrack()
			return nil, err
		}
		resp, err := p.Resume(ctx, woken)
		if !errors.Is(err, ErrParked) {
			return resp, err
		}
	}
}

// Resume answers once the wait ended: woken, it syncs again from the
// position it waited at (a change may still concern nothing the filter
// lets through; then it returns ErrParked again, with p holding the new
// wait); not woken, it is the time-out's answer, that of the empty
// range. ctx need not be the request's: a parked long-poll's request has
// returned.
func (p *Parked) Resume(ctx context.Context, woken bool) (*Response, error) {
	resp, err := p.resume(ctx, woken)
	if !errors.Is(err, ErrParked) {
		p.untrack()
	}
	return resp, err
}

func (p *Parked) resume(ctx context.Context, woken bool) (*Response, error) {
	if !woken {
		return p.s.idleResponse(ctx, p.req, p.filter, p.at, p.joined)
	}
	req := p.req
	req.Since = p.at.String()
	req.Timeout = max(time.Until(p.deadline), 0)
	return p.s.Sync(context.WithValue(ctx, parkKey{}, p), req)
}

// track counts the parked sync as open for presence, as Sync counts
// itself while it runs.
func (p *Parked) track() {
	if p.s.tracker != nil && !p.tracked {
		p.tracked = p.s.tracker.SyncStarted(p.req.User, p.req.SetPresence)
	}
}

func (p *Parked) untrack() {
	if p.tracked {
		p.tracked = false
		p.s.tracker.SyncEnded(p.req.User)
	}
}
