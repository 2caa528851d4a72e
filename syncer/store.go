package syncer

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// MembershipChange is one change of the syncing user's membership.
type MembershipChange struct {
	RoomID     id.RoomID
	Membership string
	// Prev is the membership this change replaced ("" when none); only
	// MembershipChanges fills it.
	Prev      string
	Seq       int64
	StreamPos int64
}

// Summary is what a room summary needs from the membership table.
type Summary struct {
	Joined, Invited int
	// Heroes are up to five joined or invited members other than the
	// syncing user, in the stream order of their membership.
	Heroes []id.UserID
}

// Store is what the sync engine reads. Positions are global stream
// positions; every event at or below CurrentStreamPos is committed, so a
// sync that reads up to that position never misses a later commit.
type Store interface {
	// CurrentStreamPos is the highest committed stream position.
	CurrentStreamPos(ctx context.Context) (int64, error)
	// Memberships returns user's membership of every room they have one
	// in (forgotten rooms aside) as of upTo: per room, the latest change at
	// or below it.
	Memberships(ctx context.Context, user id.UserID, upTo int64) ([]MembershipChange, error)
	// MembershipChanges returns the changes of user's membership in
	// (after, upTo], in stream order, each with the membership it replaced.
	MembershipChanges(ctx context.Context, user id.UserID, after, upTo int64) ([]MembershipChange, error)
	// ActiveRooms returns those of rooms with an event in (after, upTo].
	ActiveRooms(ctx context.Context, rooms []id.RoomID, after, upTo int64) ([]id.RoomID, error)
	// RoomEventsBetween returns the latest limit events of room in
	// (after, upTo], oldest first; limited reports that older events of
	// the range were left out.
	RoomEventsBetween(ctx context.Context, room id.RoomID, after, upTo int64, limit int) ([]*rooms.StoredEvent, bool, error)
	// StateBefore returns the room state before the event at seq (the
	// current state when seq is past the latest event).
	StateBefore(ctx context.Context, room id.RoomID, seq int64) (rooms.State, error)
	// StateEntriesBefore returns the entries of keys (those that are set)
	// in the state StateBefore(room, seq) returns, reading nothing else: a
	// lazy-loading sync needs a few member events of a large state. The
	// map may be shared with other syncs of the same room: read it only.
	StateEntriesBefore(ctx context.Context, room id.RoomID, seq int64, keys []auth.StateKey) (rooms.State, error)
	// StateChanges returns, per (type, state key), the latest state event
	// of room in (after, upTo], in sequence order.
	StateChanges(ctx context.Context, room id.RoomID, after, upTo int64) ([]*rooms.StoredEvent, error)
	// RoomSummary counts the room's joined and invited members and picks
	// its heroes for user.
	RoomSummary(ctx context.Context, room id.RoomID, user id.UserID) (Summary, error)
}

// Formatter renders stored events in the client format; the rooms service
// does, so that /sync and /messages render events the same way.
type Formatter interface {
	ClientEvent(se *rooms.StoredEvent, viewer rooms.Viewer) rooms.ClientEvent
}
