package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/syncer"
)

// Sync implements syncer.Store on the tables of the rooms store: the sync
// engine reads events by global stream position (events_room_stream) and
// the user's membership changes (events_member_changes).
type Sync struct {
	*Rooms
	// timelines shares timeline reads between the syncs one commit wakes.
	timelines *timelineCache
	// log knows the changes up to the last position read
	// (sync_memberlog.go).
	log *memberLog
	// stateEntries and summaries share the lazy-loaded members and the
	// room summaries of a fan-out (sync_shared.go).
	stateEntries *sharedReads[stateEntriesKey, rooms.State]
	summaries    *summaryCache
}

var (
	_ syncer.Store       = (*Sync)(nil)
	_ syncer.RoomSharers = (*Sync)(nil)

	_ syncer.MembershipRangeStore = (*Sync)(nil)
)

// NewSync returns the sync store reading through rooms (and its caches).
func NewSync(r *Rooms) *Sync {
	return &Sync{Rooms: r, timelines: &timelineCache{}, log: &memberLog{},
		stateEntries: &sharedReads[stateEntriesKey, rooms.State]{ttl: timelineTTL, max: timelineCacheMax},
		summaries:    &summaryCache{reads: sharedReads[summaryKey, roomCounts]{ttl: timelineTTL, max: timelineCacheMax}}}
}

// RoomEventsBetween implements syncer.Store: Rooms.RoomEventsBetween
// through the timeline cache (sync_cache.go). In a fan-out every member's
// sync reads the same range; it is read and parsed once.
func (s *Sync) RoomEventsBetween(ctx context.Context, room id.RoomID, after, upTo int64, limit int) ([]*rooms.StoredEvent, bool, error) {
	return s.timelines.get(ctx, rangeKey{room: room, after: after, upTo: upTo, limit: limit},
		func(ctx context.Context) ([]*rooms.StoredEvent, bool, error) {
			return s.Rooms.RoomEventsBetween(ctx, room, after, upTo, limit)
		})
}

const (
	selectMemberships = `
SELECT r.room_id, m.membership, m.seq, m.stream_pos FROM room_memberships m
JOIN rooms r ON r.room_nid = m.room_nid
WHERE m.user_id = $1 AND NOT m.forgotten`
	// selectMembershipAt is the user's latest member event in a room at or
	// below a position: for the rare room whose membership changed after
	// the position the sync reads up to.
	selectMembershipAt = `
SELECT e.membership, e.seq, e.stream_pos FROM events e JOIN rooms r ON r.room_nid = e.room_nid
WHERE r.room_id = $1 AND e.event_type = 'm.room.member' AND e.state_key = $2 AND e.stream_pos <= $3
  AND ` + clientVisible + `
ORDER BY e.stream_pos DESC LIMIT 1`
	selectMembershipChangesPrev = `
SELECT r.room_id, e.membership, COALESCE(p.membership, ''), e.seq, e.stream_pos
FROM events e JOIN rooms r ON r.room_nid = e.room_nid
LEFT JOIN events p ON p.room_nid = e.room_nid AND p.seq = e.replaces_seq
WHERE e.event_type = 'm.room.member' AND e.state_key = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3
  AND ` + clientVisible + `
ORDER BY e.stream_pos`
)

// Memberships implements syncer.Store from the membership table (one row
// per room), reading the events only for rooms whose row is newer than
// upTo.
func (s *Sync) Memberships(ctx context.Context, user id.UserID, upTo int64) ([]syncer.MembershipChange, error) {
	rows, err := s.pool.Query(ctx, selectMemberships, user)
	if err != nil {
		return nil, fmt.Errorf("memberships of %s: %w", user, err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncer.MembershipChange, error) {
		var c syncer.MembershipChange
		err := row.Scan(&c.RoomID, &c.Membership, &c.Seq, &c.StreamPos)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("memberships of %s: %w", user, err)
	}
	out := all[:0]
	for _, c := range all {
		if c.StreamPos > upTo {
			err := s.pool.QueryRow(ctx, selectMembershipAt, c.RoomID, user, upTo).Scan(&c.Membership, &c.Seq, &c.StreamPos)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // no membership yet at upTo
			}
			if err != nil {
				return nil, fmt.Errorf("membership of %s in %s at %d: %w", user, c.RoomID, upTo, err)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// MembershipsInRange implements syncer.MembershipRangeStore: when the log
// (sync_memberlog.go) knows the user's membership did not change in the
// range, there are no changes to read, and the memberships an earlier
// sync of the user read are still the answer.
func (s *Sync) MembershipsInRange(ctx context.Context, user id.UserID, after, upTo int64) (current, changes []syncer.MembershipChange, err error) {
	if list, ok := s.log.membershipsAt(user, after, upTo); ok {
		return list, nil, nil
	}
	unchanged := s.log.userUnchanged(user, after, upTo)
	if current, err = s.Memberships(ctx, user, upTo); err != nil {
		return nil, nil, err
	}
	s.log.putMemberships(user, upTo, current)
	if unchanged {
		return current, nil, nil
	}
	if changes, err = s.MembershipChanges(ctx, user, after, upTo); err != nil {
		return nil, nil, err
	}
	return current, changes, nil
}

// MembershipChanges implements syncer.Store.
func (s *Sync) MembershipChanges(ctx context.Context, user id.UserID, after, upTo int64) ([]syncer.MembershipChange, error) {
	rows, err := s.pool.Query(ctx, selectMembershipChangesPrev, user, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("membership changes of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (syncer.MembershipChange, error) {
		var c syncer.MembershipChange
		err := row.Scan(&c.RoomID, &c.Membership, &c.Prev, &c.Seq, &c.StreamPos)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("membership changes of %s: %w", user, err)
	}
	return out, nil
}

// selectActiveRooms probes each room's (room_nid, stream_pos) index once.
const selectActiveRooms = `
SELECT r.room_id FROM rooms r
WHERE r.room_id = ANY($1) AND EXISTS (
    SELECT 1 FROM events e WHERE e.room_nid = r.room_nid AND e.stream_pos > $2 AND e.stream_pos <= $3
      AND ` + clientVisible + `)`

// ActiveRooms implements syncer.Store: from the log when it covers the
// range (sync_memberlog.go), from the database for the rooms it cannot
// tell. A room the log calls active may have only events no client sees
// (soft-failed, rejected): the sync then reads its range and shows
// nothing, as for a room whose events the filter leaves out.
func (s *Sync) ActiveRooms(ctx context.Context, roomIDs []id.RoomID, after, upTo int64) ([]id.RoomID, error) {
	active, unknown := s.log.activeRooms(roomIDs, after, upTo)
	if len(unknown) == 0 {
		return active, nil
	}
	rows, err := s.pool.Query(ctx, selectActiveRooms, unknown, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("active rooms: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.RoomID])
	if err != nil {
		return nil, fmt.Errorf("active rooms: %w", err)
	}
	return append(active, out...), nil
}

const selectStateChanges = storedColumns + `
WHERE e.room_nid = $1 AND e.state_key IS NOT NULL AND e.stream_pos > $2 AND e.stream_pos <= $3
  AND ` + clientVisible + `
ORDER BY e.seq`

// StateChanges implements syncer.Store. On one server a room's history is
// linear, so the latest state event per key in the range is the state
// that changed.
func (s *Sync) StateChanges(ctx context.Context, room id.RoomID, after, upTo int64) ([]*rooms.StoredEvent, error) {
	evs, err := s.stored(ctx, room, selectStateChanges, func(nid int64) []any { return []any{nid, after, upTo} })
	if err != nil {
		return nil, err
	}
	last := map[auth.StateKey]int{}
	for i, se := range evs {
		last[auth.StateKey{Type: se.Event.Type(), StateKey: *se.Event.StateKey()}] = i
	}
	out := evs[:0:0]
	for i, se := range evs {
		if last[auth.StateKey{Type: se.Event.Type(), StateKey: *se.Event.StateKey()}] == i {
			out = append(out, se)
		}
	}
	return out, nil
}

// selectJoinedAmong probes room_memberships' primary key once per (room,
// user) pair.
const selectJoinedAmong = `
SELECT DISTINCT m.user_id FROM rooms r JOIN room_memberships m ON m.room_nid = r.room_nid
WHERE r.room_id = ANY($1) AND m.user_id = ANY($2) AND m.membership = 'join'`

// JoinedAmong implements syncer.RoomSharers: which of users are joined to
// one of rooms now. The presence stream asks it once per sync for every
// user whose presence changed, instead of listing each one's rooms.
func (s *Sync) JoinedAmong(ctx context.Context, roomIDs []id.RoomID, users []id.UserID) ([]id.UserID, error) {
	rows, err := s.pool.Query(ctx, selectJoinedAmong, roomIDs, users)
	if err != nil {
		return nil, fmt.Errorf("users joined among %d rooms: %w", len(roomIDs), err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, fmt.Errorf("users joined among %d rooms: %w", len(roomIDs), err)
	}
	return out, nil
}
