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

// MemberQuietStore is implemented by a Store that can tell, without a
// query, that no membership that matters to the device lists stream
// changed in a range (issue #9: in a fan-out, every member's sync asked
// the database which users started or stopped sharing a room with them).
type MemberQuietStore interface {
	// MembersUnchanged reports that it knows that neither user's
	// membership nor any membership of the joined rooms changed in
	// (after, upTo]; false when it cannot tell.
	MembersUnchanged(user id.UserID, joined []id.RoomID, after, upTo int64) bool
}

// membersQuiet reports that the store knows no membership changed in the
// range of an incremental sync, neither the user's nor one in a room the
// user is joined to at b.pos (b.joined, every room, whatever the filter).
func (b *builder) membersQuiet() bool {
	qs, ok := b.s.store.(MemberQuietStore)
	return ok && !b.initial && qs.MembersUnchanged(b.req.User, b.joined, b.since.Pos(StreamTimeline), b.pos)
}
