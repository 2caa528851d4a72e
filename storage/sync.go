package storage

import (
	"context"
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
}

var _ syncer.Store = (*Sync)(nil)

// NewSync returns the sync store reading through rooms (and its caches).
func NewSync(rooms *Rooms) *Sync { return &Sync{Rooms: rooms} }

// MembershipHistory implements syncer.Store.
func (s *Sync) MembershipHistory(ctx context.Context, user id.UserID, upTo int64) ([]syncer.MembershipChange, error) {
	changes, err := s.MembershipChanges(ctx, user, 0, upTo)
	if err != nil {
		return nil, err
	}
	out := make([]syncer.MembershipChange, len(changes))
	for i, c := range changes {
		out[i] = syncer.MembershipChange{RoomID: c.RoomID, Membership: c.Membership, Seq: c.Seq, StreamPos: c.StreamPos}
	}
	return out, nil
}

// selectActiveRooms probes each room's (room_nid, stream_pos) index once.
const selectActiveRooms = `
SELECT r.room_id FROM rooms r
WHERE r.room_id = ANY($1) AND EXISTS (
    SELECT 1 FROM events e WHERE e.room_nid = r.room_nid AND e.stream_pos > $2 AND e.stream_pos <= $3)`

// ActiveRooms implements syncer.Store.
func (s *Sync) ActiveRooms(ctx context.Context, roomIDs []id.RoomID, after, upTo int64) ([]id.RoomID, error) {
	rows, err := s.pool.Query(ctx, selectActiveRooms, roomIDs, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("active rooms: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.RoomID])
	if err != nil {
		return nil, fmt.Errorf("active rooms: %w", err)
	}
	return out, nil
}

const selectStateChanges = storedColumns + `
WHERE e.room_nid = $1 AND e.state_key IS NOT NULL AND e.stream_pos > $2 AND e.stream_pos <= $3
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

const (
	selectMemberCounts = `
SELECT membership, count(*) FROM room_memberships
WHERE room_nid = $1 AND membership IN ('join', 'invite') GROUP BY membership`
	selectHeroes = `
SELECT user_id FROM room_memberships
WHERE room_nid = $1 AND membership IN ('join', 'invite') AND user_id <> $2
ORDER BY stream_pos LIMIT 5`
)

// RoomSummary implements syncer.Store.
func (s *Sync) RoomSummary(ctx context.Context, room id.RoomID, user id.UserID) (syncer.Summary, error) {
	var sum syncer.Summary
	e, err := s.room(ctx, room)
	if err != nil {
		return sum, err
	}
	rows, err := s.pool.Query(ctx, selectMemberCounts, e.nid)
	if err != nil {
		return sum, fmt.Errorf("member counts of %s: %w", room, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		var n int
		if err := rows.Scan(&m, &n); err != nil {
			return sum, fmt.Errorf("member counts of %s: %w", room, err)
		}
		if m == "join" {
			sum.Joined = n
		} else {
			sum.Invited = n
		}
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("member counts of %s: %w", room, err)
	}
	heroes, err := s.pool.Query(ctx, selectHeroes, e.nid, user)
	if err != nil {
		return sum, fmt.Errorf("heroes of %s: %w", room, err)
	}
	if sum.Heroes, err = pgx.CollectRows(heroes, pgx.RowTo[id.UserID]); err != nil {
		return sum, fmt.Errorf("heroes of %s: %w", room, err)
	}
	return sum, nil
}
