package storage

import (
	"context"
	"fmt"
	"sync"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// memberLog is what the sync store knows, without asking the database,
// of the stream positions it has read up to: per room the latest event,
// per room and per user the latest membership change. The syncs one
// commit wakes (every member of a room) read the stream position once
// between them (syncer.sharedRead); that read also reads the events
// committed since the previous one — a few rows — and so each of them can
// tell, from memory, that its user's membership did not change in its
// range, which of its rooms had events, and reuse the memberships an
// earlier sync of the same user read (issue #9: those were four of the
// eleven round trips of every member's sync).
//
// The log is read from the database, in stream order, after the position
// it answers for was read: every event at or below a position
// CurrentStreamPos returned is committed, so a change at or below w is in
// the log — whatever node committed it, and however late its notifier
// hears of it. It knows nothing of positions at or below base (where it
// started, or restarted after growing too large or a failed read): a
// question about them is answered by the database, as before.
type memberLog struct {
	// tail serialises reads of the log's tail.
	tail sync.Mutex

	mu      sync.Mutex
	started bool
	base, w int64
	// roomLast: the latest event of the room in (base, w].
	roomLast map[id.RoomID]int64
	// roomMember: the latest membership change in the room in (base, w]
	// (a member event, or state resolution changing a member key).
	roomMember map[id.RoomID]int64
	// userLast: the latest change of the user's membership in (base, w].
	userLast map[id.UserID]int64
	// memberships: per user, Memberships(user, at) as read from the
	// database.
	memberships map[id.UserID]membershipsAt
}

type membershipsAt struct {
	at   int64
	list []syncer.MembershipChange
}

const (
	// maxLogTail is the widest range of positions the log reads at once;
	// past it (a long idle period, a burst of imports) it starts again at
	// the new position.
	maxLogTail = 4096
	// maxLogEntries bounds each of the log's maps; past it the log starts
	// again empty at w.
	maxLogEntries = 100_000
)

// selectLogTail reads the rooms with events in ($1, $2], the latest
// position of each, and the membership changes among them: member events
// and changes of member keys of the resolved state (sql/0016; state
// resolution after a fork can change a membership without a new member
// event of that user). Positions are dense (one per event), so the range
// is a few rows of events_stream per commit.
const selectLogTail = `
WITH ev AS (
    SELECT e.room_nid, e.stream_pos, e.event_type, e.state_key FROM events e
    WHERE e.stream_pos > $1 AND e.stream_pos <= $2
)
SELECT r.room_id, x.stream_pos, x.member FROM (
    SELECT room_nid, max(stream_pos) AS stream_pos, NULL::text AS member FROM ev GROUP BY room_nid
    UNION ALL
    SELECT room_nid, max(stream_pos), state_key FROM ev
    WHERE event_type = 'm.room.member' AND state_key IS NOT NULL GROUP BY room_nid, state_key
    UNION ALL
    SELECT d.room_nid, max(d.stream_pos), k.state_key
    FROM room_state_deltas d JOIN state_keys k ON k.key_nid = d.key_nid
    WHERE d.room_nid IN (SELECT room_nid FROM ev) AND d.stream_pos > $1 AND d.stream_pos <= $2
      AND k.event_type = 'm.room.member'
    GROUP BY d.room_nid, k.state_key
) x JOIN rooms r ON r.room_nid = x.room_nid`

// CurrentStreamPos implements syncer.Store: the rooms store's committed
// position, with the log brought up to it.
func (s *Sync) CurrentStreamPos(ctx context.Context) (int64, error) {
	l := s.log
	l.tail.Lock()
	defer l.tail.Unlock()
	pos, err := s.Rooms.CurrentStreamPos(ctx)
	if err != nil {
		return 0, err
	}
	s.advanceLog(ctx, pos)
	return pos, nil
}

// CurrentPositions implements syncer.CounterPositionStore:
// CurrentStreamPos and the named stream counters in one statement.
func (s *Sync) CurrentPositions(ctx context.Context, counters []string) (int64, []int64, error) {
	l := s.log
	l.tail.Lock()
	defer l.tail.Unlock()
	pos, counts, err := s.Rooms.stream.currentWithCounters(ctx, s.pool, counters)
	if err != nil {
		return 0, nil, err
	}
	s.advanceLog(ctx, pos)
	return pos, counts, nil
}

// advanceLog brings the log up to pos, a position just read; l.tail is
// held.
func (s *Sync) advanceLog(ctx context.Context, pos int64) {
	l := s.log
	l.mu.Lock()
	started, w := l.started, l.w
	l.mu.Unlock()
	if !started || pos-w > maxLogTail || pos < w {
		l.restart(pos)
		return
	}
	if pos == w {
		return
	}
	if err := s.readLogTail(ctx, w, pos); err != nil {
		// The log only saves reads: start it again rather than fail syncs.
		l.restart(pos)
	}
}

// readLogTail adds the changes of (after, upTo] to the log.
func (s *Sync) readLogTail(ctx context.Context, after, upTo int64) error {
	rows, err := s.pool.Query(ctx, selectLogTail, after, upTo)
	if err != nil {
		return fmt.Errorf("sync log (%d, %d]: %w", after, upTo, err)
	}
	type change struct {
		room   id.RoomID
		pos    int64
		member *string
	}
	var changes []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.room, &c.pos, &c.member); err != nil {
			rows.Close()
			return fmt.Errorf("sync log (%d, %d]: %w", after, upTo, err)
		}
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sync log (%d, %d]: %w", after, upTo, err)
	}
	l := s.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != after {
		return fmt.Errorf("sync log moved from %d to %d meanwhile", after, l.w)
	}
	for _, c := range changes {
		if c.member == nil {
			l.roomLast[c.room] = max(l.roomLast[c.room], c.pos)
			continue
		}
		l.roomMember[c.room] = max(l.roomMember[c.room], c.pos)
		u := id.UserID(*c.member)
		l.userLast[u] = max(l.userLast[u], c.pos)
	}
	l.w = upTo
	if len(l.roomLast) > maxLogEntries || len(l.userLast) > maxLogEntries {
		l.restartLocked(upTo)
	}
	return nil
}

func (l *memberLog) restart(pos int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restartLocked(pos)
}

func (l *memberLog) restartLocked(pos int64) {
	l.started, l.base, l.w = true, pos, pos
	l.roomLast = map[id.RoomID]int64{}
	l.roomMember = map[id.RoomID]int64{}
	l.userLast = map[id.UserID]int64{}
	l.memberships = map[id.UserID]membershipsAt{}
}

// coversLocked reports whether the log knows every change in (after,
// upTo]; l.mu is held.
func (l *memberLog) coversLocked(after, upTo int64) bool {
	return l.started && l.base <= after && after <= upTo && upTo <= l.w
}

// userUnchanged reports that the log knows user's membership did not
// change in (after, upTo].
func (l *memberLog) userUnchanged(user id.UserID, after, upTo int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.coversLocked(after, upTo) && l.userLast[user] <= after
}

// membersUnchanged reports that the log knows that neither user's
// membership nor any membership in rooms changed in (after, upTo]. A room
// whose latest change is past upTo may hide one within the range: the
// answer is then "cannot tell" (false).
func (l *memberLog) membersUnchanged(user id.UserID, rooms []id.RoomID, after, upTo int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.coversLocked(after, upTo) || l.userLast[user] > after {
		return false
	}
	for _, r := range rooms {
		if l.roomMember[r] > after {
			return false
		}
	}
	return true
}

// roomMembersUnchanged reports that the log knows no membership of room
// changed after after (up to its w), and returns that w.
func (l *memberLog) roomMembersUnchanged(room id.RoomID, after int64) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w, l.coversLocked(after, l.w) && l.roomMember[room] <= after
}

// position is the position the log has read up to; ok is false before
// its first read.
func (l *memberLog) position() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w, l.started
}

// activeRooms splits rooms into those the log knows had an event in
// (after, upTo] and those it cannot tell (a later event hides whether
// there was one in the range, or the range is not covered); the others
// had none.
func (l *memberLog) activeRooms(rooms []id.RoomID, after, upTo int64) (active, unknown []id.RoomID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.coversLocked(after, upTo) {
		return nil, rooms
	}
	for _, r := range rooms {
		switch last := l.roomLast[r]; {
		case last <= after:
		case last <= upTo:
			active = append(active, r)
		default:
			unknown = append(unknown, r)
		}
	}
	return active, unknown
}

// membershipsAt returns the memberships of user as of upTo from an
// earlier read, when the log knows they did not change between that read
// and upTo, nor in (after, upTo]. Every entry of the list is then at or
// below after: a left room among them (forgotten since, perhaps) is no
// part of an incremental sync from after.
func (l *memberLog) membershipsAt(user id.UserID, after, upTo int64) ([]syncer.MembershipChange, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.memberships[user]
	if !ok {
		return nil, false
	}
	lo, hi := min(after, m.at), max(upTo, m.at)
	if !l.coversLocked(lo, hi) || l.userLast[user] > lo {
		return nil, false
	}
	return append([]syncer.MembershipChange(nil), m.list...), true
}

// putMemberships keeps Memberships(user, at) as read from the database.
func (l *memberLog) putMemberships(user id.UserID, at int64, list []syncer.MembershipChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started || at < l.base {
		return
	}
	if len(l.memberships) >= maxLogEntries {
		l.memberships = map[id.UserID]membershipsAt{}
	}
	l.memberships[user] = membershipsAt{at: at, list: append([]syncer.MembershipChange(nil), list...)}
}

// MembersUnchanged implements syncer.MemberQuietStore: from the log alone,
// never a query. The device lists stream of every member's sync asked the
// database which users started or stopped sharing a room with the member
// in the range (issue #9: the last per-member query of a fan-out); the log
// already knows when none did.
func (s *Sync) MembersUnchanged(user id.UserID, joined []id.RoomID, after, upTo int64) bool {
	return s.log.membersUnchanged(user, joined, after, upTo)
}
