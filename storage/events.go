package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

func nowMS() int64 { return time.Now().UnixMilli() }

// storedColumns are what scanStored reads, from events e with the
// redaction r and the replaced state event p joined. The event id comes
// with the bytes so that they are parsed without hashing them again
// (event.ParseStored).
const storedColumns = `SELECT ` + storedList + storedFrom

// storedList and storedFrom are the columns and joins every stored-event
// read shares; scanStoredRow decodes them.
const (
	storedList = `e.seq, e.stream_pos, e.event_json, e.txn_device, e.txn_id, r.event_json, p.event_json, e.event_id`
	storedFrom = `
FROM events e
LEFT JOIN events r ON r.room_nid = e.room_nid AND r.seq = e.redacted_by
LEFT JOIN events p ON p.room_nid = e.room_nid AND p.seq = e.replaces_seq`
)

const (
	selectEventByID = storedColumns + ` WHERE e.room_nid = $1 AND e.event_id = $2 AND ` + clientVisible
	selectBackward  = storedColumns + ` WHERE e.room_nid = $1 AND e.seq <= $2 AND ` + clientVisible + ` ORDER BY e.seq DESC LIMIT $3`
	selectForward   = storedColumns + ` WHERE e.room_nid = $1 AND e.seq > $2 AND ` + clientVisible + ` ORDER BY e.seq LIMIT $3`
	// selectHistory includes outliers: the state a remote room was joined
	// with (sql/0008) is the membership and history visibility its first
	// timeline events are read against.
	selectHistory = storedColumns + `
WHERE e.room_nid = $1 AND e.event_type = ANY($2) AND e.state_key IS NOT NULL
  AND ($3::text IS NULL OR e.state_key = $3) AND e.seq <= $4
  AND NOT e.soft_failed AND e.rejected IS NULL ORDER BY e.seq`
	selectAtTimeForward = storedColumns + `
WHERE e.room_nid = $1 AND e.origin_ts >= $2 AND ` + clientVisible + ` ORDER BY e.origin_ts, e.seq LIMIT 1`
	selectAtTimeBackward = storedColumns + `
WHERE e.room_nid = $1 AND e.origin_ts <= $2 AND ` + clientVisible + ` ORDER BY e.origin_ts DESC, e.seq DESC LIMIT 1`
	selectBetween = storedColumns + `
WHERE e.room_nid = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 AND ` + clientVisible + `
ORDER BY e.stream_pos DESC LIMIT $4`
)

// clientVisible is the condition on events e of the rows clients see:
// outliers, soft-failed and rejected events (sql/0008) are stored but
// never shown.
const clientVisible = `NOT e.outlier AND NOT e.soft_failed AND e.rejected IS NULL`

// scanStored runs a storedColumns query.
func scanStored(ctx context.Context, q querier, room id.RoomID, v roomversion.Version, sql string, args ...any) ([]*rooms.StoredEvent, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*rooms.StoredEvent
	for rows.Next() {
		se, err := scanStoredRow(rows, room, v)
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, rows.Err()
}

// scanStoredRow decodes one row of storedList, followed by the columns
// extra scans into (a read's own additions, such as the topological
// position).
func scanStoredRow(rows pgx.Rows, room id.RoomID, v roomversion.Version, extra ...any) (*rooms.StoredEvent, error) {
	var (
		se                   = &rooms.StoredEvent{RoomID: room}
		raw, redaction, prev []byte
		dev, txn             *string
		eventID              id.EventID
	)
	dest := append([]any{&se.Seq, &se.StreamPos, &raw, &dev, &txn, &redaction, &prev, &eventID}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	if err := fillStored(se, v, raw, redaction, prev, dev, txn, eventID); err != nil {
		return nil, err
	}
	return se, nil
}

func (r *Rooms) stored(ctx context.Context, room id.RoomID, sql string, args func(nid int64) []any) ([]*rooms.StoredEvent, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	out, err := scanStored(ctx, r.pool, room, e.version, sql, args(e.nid)...)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", room, err)
	}
	return out, nil
}

// Event implements rooms.EventReader.
func (r *Rooms) Event(ctx context.Context, room id.RoomID, eventID id.EventID) (*rooms.StoredEvent, error) {
	out, err := r.stored(ctx, room, selectEventByID, func(nid int64) []any { return []any{nid, eventID} })
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, rooms.ErrEventNotFound
	}
	return out[0], nil
}

// Timeline implements rooms.EventReader.
func (r *Rooms) Timeline(ctx context.Context, room id.RoomID, from int64, dir rooms.Direction, limit int) ([]*rooms.StoredEvent, error) {
	sql := selectBackward
	if dir == rooms.Forward {
		sql = selectForward
	}
	return r.stored(ctx, room, sql, func(nid int64) []any { return []any{nid, from, limit} })
}

// StateHistory implements rooms.EventReader.
func (r *Rooms) StateHistory(ctx context.Context, room id.RoomID, types []string, stateKey *string, upTo int64) ([]*rooms.StoredEvent, error) {
	return r.stored(ctx, room, selectHistory, func(nid int64) []any { return []any{nid, types, stateKey, upTo} })
}

// EventAtTime implements rooms.EventReader.
func (r *Rooms) EventAtTime(ctx context.Context, room id.RoomID, ts int64, dir rooms.Direction) (*rooms.StoredEvent, error) {
	sql := selectAtTimeBackward
	if dir == rooms.Forward {
		sql = selectAtTimeForward
	}
	out, err := r.stored(ctx, room, sql, func(nid int64) []any { return []any{nid, ts} })
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, rooms.ErrEventNotFound
	}
	return out[0], nil
}

// RoomEventsBetween returns the events of room with a stream position in
// (after, upTo], at most limit of them — the latest ones — oldest first;
// limited reports that older events in the range were left out. It is the
// sync engine's timeline read.
func (r *Rooms) RoomEventsBetween(ctx context.Context, room id.RoomID, after, upTo int64, limit int) (evs []*rooms.StoredEvent, limited bool, err error) {
	out, err := r.stored(ctx, room, selectBetween, func(nid int64) []any { return []any{nid, after, upTo, limit + 1} })
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		out, limited = out[:limit], true
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, limited, nil
}

// MembershipChange is one change of a user's membership.
type MembershipChange struct {
	RoomID     id.RoomID
	EventID    id.EventID
	Membership string
	Sender     id.UserID
	Seq        int64
	StreamPos  int64
}

const (
	selectMembershipChanges = `
SELECT r.room_id, e.event_id, e.membership, e.sender, e.seq, e.stream_pos
FROM events e JOIN rooms r ON r.room_nid = e.room_nid
WHERE e.event_type = 'm.room.member' AND e.state_key = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3
  AND ` + clientVisible + `
ORDER BY e.stream_pos`
)

// MembershipChanges returns every change of user's membership with a
// stream position in (after, upTo], in stream order (a room may appear
// more than once; the last entry is the membership as of upTo).
func (r *Rooms) MembershipChanges(ctx context.Context, user id.UserID, after, upTo int64) ([]MembershipChange, error) {
	rows, err := r.pool.Query(ctx, selectMembershipChanges, user, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("membership changes of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (MembershipChange, error) {
		var c MembershipChange
		err := row.Scan(&c.RoomID, &c.EventID, &c.Membership, &c.Sender, &c.Seq, &c.StreamPos)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("membership changes of %s: %w", user, err)
	}
	return out, nil
}

// CurrentStreamPos is the stream frontier: every event at or below it is
// committed, and no position at or below it is still being written
// (stream_frontier.go).
func (r *Rooms) CurrentStreamPos(ctx context.Context) (int64, error) {
	return r.stream.current(ctx, r.pool)
}

const (
	selectRoomsOf = `
SELECT r.room_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
WHERE m.user_id = $1 AND m.membership = ANY($2) AND NOT m.forgotten ORDER BY r.room_id`
	selectMembers = `
SELECT user_id, membership FROM room_memberships WHERE room_nid = $1`
	updateForget = `
UPDATE room_memberships SET forgotten = TRUE WHERE room_nid = $1 AND user_id = $2`
)

// RoomsOf implements rooms.RoomReader.
func (r *Rooms) RoomsOf(ctx context.Context, user id.UserID, memberships ...string) ([]id.RoomID, error) {
	rows, err := r.pool.Query(ctx, selectRoomsOf, user, memberships)
	if err != nil {
		return nil, fmt.Errorf("rooms of %s: %w", user, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.RoomID])
	if err != nil {
		return nil, fmt.Errorf("rooms of %s: %w", user, err)
	}
	return out, nil
}

// Members returns every user with a membership of room and that
// membership (from the membership table; for the sync engine's summaries).
func (r *Rooms) Members(ctx context.Context, room id.RoomID) (map[id.UserID]string, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return nil, err
	}
	rows, err := r.pool.Query(ctx, selectMembers, e.nid)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", room, err)
	}
	defer rows.Close()
	out := map[id.UserID]string{}
	for rows.Next() {
		var u id.UserID
		var m string
		if err := rows.Scan(&u, &m); err != nil {
			return nil, err
		}
		out[u] = m
	}
	return out, rows.Err()
}

// Forget implements rooms.MembershipWriter.
func (r *Rooms) Forget(ctx context.Context, room id.RoomID, user id.UserID) error {
	e, err := r.room(ctx, room)
	if err != nil {
		return err
	}
	if _, err := r.pool.Exec(ctx, updateForget, e.nid, user); err != nil {
		return fmt.Errorf("forget %s for %s: %w", room, user, err)
	}
	return nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

const selectSeqAtStreamPos = `
SELECT COALESCE(max(seq), 0) FROM events e WHERE room_nid = $1 AND stream_pos <= $2 AND ` + clientVisible

// SeqAtStreamPos implements rooms.EventReader.
func (r *Rooms) SeqAtStreamPos(ctx context.Context, room id.RoomID, pos int64) (int64, error) {
	e, err := r.room(ctx, room)
	if err != nil {
		return 0, err
	}
	var seq int64
	if err := r.pool.QueryRow(ctx, selectSeqAtStreamPos, e.nid, pos).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sequence at stream position %d in %s: %w", pos, room, err)
	}
	return seq, nil
}

// fillStored parses the columns of storedList into se.
func fillStored(se *rooms.StoredEvent, v roomversion.Version, raw, redaction, prev []byte, dev, txn *string, eventID id.EventID) error {
	var err error
	if se.Event, err = event.ParseStored(v, raw, eventID); err != nil {
		return fmt.Errorf("stored event does not parse: %w", err)
	}
	if redaction != nil {
		if se.Redaction, err = event.Parse(v, redaction); err != nil {
			return fmt.Errorf("stored redaction does not parse: %w", err)
		}
		se.Event = se.Event.Redacted()
	}
	if prev != nil {
		var p struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(prev, &p) == nil {
			se.PrevContent = p.Content
		}
	}
	if dev != nil && txn != nil {
		se.TxnDevice, se.TxnID = id.DeviceID(*dev), *txn
	}
	return nil
}
