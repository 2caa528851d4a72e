package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
)

const (
	// sharesJoinedRoom: $1 and the outer user are both joined to a room.
	selectChangedUsers = `
SELECT DISTINCT c.user_id FROM device_list_changes c
WHERE c.stream_pos > $2 AND c.stream_pos <= $3 AND (c.user_id = $1 OR EXISTS (
    SELECT 1 FROM room_memberships a JOIN room_memberships b ON b.room_nid = a.room_nid
    WHERE a.user_id = $1 AND a.membership = 'join' AND b.user_id = c.user_id AND b.membership = 'join'))
ORDER BY c.user_id`
	// selectMembershipDeltas: others' membership changes in the viewer's
	// joined rooms, and the members of rooms whose membership of the
	// viewer changed (join: they start sharing; otherwise: they may stop).
	selectMembershipDeltas = `
SELECT o.user_id, o.membership = 'join' FROM room_memberships v JOIN room_memberships o ON o.room_nid = v.room_nid
WHERE v.user_id = $1 AND v.membership = 'join' AND o.user_id <> $1 AND o.stream_pos > $2 AND o.stream_pos <= $3
UNION ALL
SELECT o.user_id, v.membership = 'join' FROM room_memberships v JOIN room_memberships o ON o.room_nid = v.room_nid
WHERE v.user_id = $1 AND v.membership IN ('join', 'leave', 'ban') AND v.stream_pos > $2 AND v.stream_pos <= $3
  AND o.user_id <> $1 AND o.membership = 'join'`
	selectNotSharing = `
SELECT u FROM unnest($2::text[]) AS u WHERE NOT EXISTS (
    SELECT 1 FROM room_memberships a JOIN room_memberships b ON b.room_nid = a.room_nid
    WHERE a.user_id = $1 AND a.membership = 'join' AND b.user_id = u AND b.membership = 'join')`
	selectUsersSharingRoom = `
SELECT DISTINCT b.user_id FROM room_memberships a JOIN room_memberships b ON b.room_nid = a.room_nid
WHERE a.user_id = $1 AND a.membership = 'join' AND b.membership = 'join' AND b.user_id <> $1`
	selectLatestDeviceListPos = `
SELECT stream_pos FROM device_list_changes WHERE user_id = $1 ORDER BY stream_pos DESC LIMIT 2`
)

// DeviceListPos implements keys.DeviceListStore.
func (s *Keys) DeviceListPos(ctx context.Context) (int64, error) {
	return streamPos(ctx, s.pool, "device_lists")
}

// MarkDeviceListChanged implements keys.DeviceListStore.
func (s *Keys) MarkDeviceListChanged(ctx context.Context, user id.UserID) (int64, error) {
	var pos int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		pos, err = markDeviceListChanged(ctx, tx, user)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mark device list of %s changed: %w", user, err)
	}
	return pos, nil
}

// ChangedUsers implements keys.DeviceListStore.
func (s *Keys) ChangedUsers(ctx context.Context, viewer id.UserID, after, upTo int64) ([]id.UserID, error) {
	rows, err := s.pool.Query(ctx, selectChangedUsers, viewer, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("device list changes for %s: %w", viewer, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, fmt.Errorf("device list changes for %s: %w", viewer, err)
	}
	if out == nil {
		out = []id.UserID{}
	}
	return out, nil
}

// MembershipDeltas implements keys.DeviceListStore. Memberships are the
// current rows: a change after upTo shows on a later sync.
func (s *Keys) MembershipDeltas(ctx context.Context, viewer id.UserID, after, upTo int64) (joined, left []id.UserID, err error) {
	rows, err := s.pool.Query(ctx, selectMembershipDeltas, viewer, after, upTo)
	if err != nil {
		return nil, nil, fmt.Errorf("membership deltas of %s: %w", viewer, err)
	}
	seenJoin, seenLeft := map[id.UserID]bool{}, map[id.UserID]bool{}
	var candidates []string
	for rows.Next() {
		var u id.UserID
		var isJoin bool
		if err := rows.Scan(&u, &isJoin); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if isJoin && !seenJoin[u] {
			seenJoin[u] = true
			joined = append(joined, u)
		} else if !isJoin && !seenLeft[u] {
			seenLeft[u] = true
			candidates = append(candidates, string(u))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(candidates) == 0 {
		return joined, nil, nil
	}
	rows, err = s.pool.Query(ctx, selectNotSharing, viewer, candidates)
	if err != nil {
		return nil, nil, fmt.Errorf("membership deltas of %s: %w", viewer, err)
	}
	left, err = pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, nil, fmt.Errorf("membership deltas of %s: %w", viewer, err)
	}
	return joined, left, nil
}

// UsersSharingRoom implements keys.DeviceListStore.
func (s *Keys) UsersSharingRoom(ctx context.Context, user id.UserID) ([]id.UserID, error) {
	rows, err := s.pool.Query(ctx, selectUsersSharingRoom, user)
	if err != nil {
		return nil, fmt.Errorf("users sharing a room with %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, fmt.Errorf("users sharing a room with %s: %w", user, err)
	}
	return out, nil
}

// LatestDeviceListPos implements keys.DeviceListStore.
func (s *Keys) LatestDeviceListPos(ctx context.Context, user id.UserID) (latest, prev int64, err error) {
	rows, err := s.pool.Query(ctx, selectLatestDeviceListPos, user)
	if err != nil {
		return 0, 0, fmt.Errorf("device list position of %s: %w", user, err)
	}
	ps, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, 0, fmt.Errorf("device list position of %s: %w", user, err)
	}
	if len(ps) > 0 {
		latest = ps[0]
	}
	if len(ps) > 1 {
		prev = ps[1]
	}
	return latest, prev, nil
}
