package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
)

// MembershipRangeStore is implemented by a Store that answers the
// membership reads of an incremental sync together, and from memory when
// the user's membership did not change (issue #9: in a fan-out to 500
// members, each member's sync read its memberships and their changes
// although neither had changed).
type MembershipRangeStore interface {
	// MembershipsInRange returns Memberships(user, upTo) and
	// MembershipChanges(user, after, upTo) — but for the rooms left before
	// after: a room forgotten since may still be among them, which an
	// incremental sync from after does not show anyway.
	MembershipsInRange(ctx context.Context, user id.UserID, after, upTo int64) (current, changes []MembershipChange, err error)
}

// memberships reads the user's memberships as of b.pos and, on an
// incremental sync, their changes within the range.
func (b *builder) memberships(ctx context.Context, sinceTL int64) (current, changes []MembershipChange, err error) {
	if rs, ok := b.s.store.(MembershipRangeStore); ok && !b.initial && !b.req.FullState {
		return rs.MembershipsInRange(ctx, b.req.User, sinceTL, b.pos)
	}
	if current, err = b.s.store.Memberships(ctx, b.req.User, b.pos); err != nil || b.initial {
		return current, nil, err
	}
	changes, err = b.s.store.MembershipChanges(ctx, b.req.User, sinceTL, b.pos)
	return current, changes, err
}
