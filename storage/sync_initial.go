package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/syncer"
)

var _ syncer.RoomsPrefetcher = (*Sync)(nil)

const (
	// selectTimelines is RoomEventsBetween(room, 0, $2, $3) of every room
	// of $1 at once: per room, the latest $3 client-visible events at or
	// below $2 (each room one descent of events_room_stream). The rows come
	// unsorted: sorting them all (by room, then position) spilled to disk,
	// wide as they are — 80 to 480 ms of the 500-room initial sync,
	// more than the reads themselves.
	selectTimelines = `
SELECT r.room_id, r.room_version, x.seq, x.stream_pos, x.event_json, x.txn_device, x.txn_id, x.redaction, x.prev, x.event_id
FROM rooms r CROSS JOIN LATERAL (
    SELECT e.seq, e.stream_pos, e.event_json, e.txn_device, e.txn_id, rd.event_json AS redaction, p.event_json AS prev,
           e.event_id
    FROM events e
    LEFT JOIN events rd ON rd.room_nid = e.room_nid AND rd.seq = e.redacted_by
    LEFT JOIN events p ON p.room_nid = e.room_nid AND p.seq = e.replaces_seq
    WHERE e.room_nid = r.room_nid AND e.stream_pos > 0 AND e.stream_pos <= $2 AND ` + clientVisible + `
    ORDER BY e.stream_pos DESC LIMIT $3) x
WHERE r.room_id = ANY($1)`
	// selectSummaries is RoomSummary of every room of $1 for user $2.
	selectSummaries = `
SELECT r.room_id,
       (SELECT count(*) FROM room_memberships m WHERE m.room_nid = r.room_nid AND m.membership = 'join'),
       (SELECT count(*) FROM room_memberships m WHERE m.room_nid = r.room_nid AND m.membership = 'invite'),
       ARRAY(SELECT h.user_id FROM room_memberships h
             WHERE h.room_nid = r.room_nid AND h.membership IN ('join', 'invite') AND h.user_id <> $2
             ORDER BY h.stream_pos LIMIT 5)
FROM rooms r WHERE r.room_id = ANY($1)`
	// selectForks is ForkedFrom of every room of $1 that forked.
	selectForks = `
SELECT r.room_id, f.first_seq FROM rooms r JOIN room_forks f ON f.room_nid = r.room_nid WHERE r.room_id = ANY($1)`
)

// PrefetchRooms implements syncer.RoomsPrefetcher: the timelines and the
// summaries of all the rooms in one round trip of two statements, instead
// of three per room (issue #9: an initial sync of 500 rooms was some
// 2,000 sequential round trips).
func (s *Sync) PrefetchRooms(ctx context.Context, req syncer.PrefetchRequest) (map[id.RoomID]*syncer.RoomPrefetch, error) {
	out := make(map[id.RoomID]*syncer.RoomPrefetch, len(req.Rooms))
	if len(req.Rooms) == 0 {
		return out, nil
	}
	get := func(room id.RoomID) *syncer.RoomPrefetch {
		p := out[room]
		if p == nil {
			p = &syncer.RoomPrefetch{}
			out[room] = p
		}
		return p
	}
	// The rows are parsed after the round trip, several rooms at a time:
	// parsing thousands of events on the reading goroutine alone cost more
	// than the round trips saved.
	type row struct {
		se                   *rooms.StoredEvent
		v                    roomversion.Version
		raw, redaction, prev []byte
		dev, txn             *string
		eventID              id.EventID
	}
	raws := map[id.RoomID][]*row{}
	batch := &pgx.Batch{}
	batch.Queue(noJIT)
	batch.Queue(selectTimelines, req.Rooms, req.UpTo, req.Limit+1).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				room id.RoomID
				ver  string
				r    = &row{se: &rooms.StoredEvent{}}
			)
			if err := rows.Scan(&room, &ver, &r.se.Seq, &r.se.StreamPos, &r.raw, &r.dev, &r.txn, &r.redaction, &r.prev, &r.eventID); err != nil {
				return err
			}
			var ok bool
			if r.v, ok = roomversion.Lookup(roomversion.ID(ver)); !ok {
				return fmt.Errorf("room %s has unknown version %q", room, ver)
			}
			r.se.RoomID = room
			get(room)
			raws[room] = append(raws[room], r)
		}
		return rows.Err()
	})
	batch.Queue(selectSummaries, req.Rooms, req.User).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				room            id.RoomID
				joined, invited int
				heroes          []id.UserID
			)
			if err := rows.Scan(&room, &joined, &invited, &heroes); err != nil {
				return err
			}
			p := get(room)
			p.Summary = syncer.Summary{Joined: joined, Invited: invited, Heroes: heroes}
			p.HasSummary = true
		}
		return rows.Err()
	})
	// After the events, as the builder of one room reads it.
	batch.Queue(selectForks, req.Rooms).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var room id.RoomID
			var first int64
			if err := rows.Scan(&room, &first); err != nil {
				return err
			}
			p := get(room)
			p.ForkedFrom, p.Forked = first, true
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("prefetch %d rooms: %w", len(req.Rooms), err)
	}
	for room, rs := range raws {
		// Newest first; the one past the limit only tells that the
		// timeline is limited.
		slices.SortFunc(rs, func(a, b *row) int { return cmp.Compare(b.se.StreamPos, a.se.StreamPos) })
		if len(rs) > req.Limit {
			raws[room], out[room].Limited = rs[:req.Limit], true
		}
	}
	next := make(chan id.RoomID)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(prefetchParsers, len(raws)) {
		wg.Go(func() {
			for room := range next {
				rs := raws[room]
				evs := make([]*rooms.StoredEvent, len(rs))
				for i, r := range rs {
					if err := fillStored(r.se, r.v, r.raw, r.redaction, r.prev, r.dev, r.txn, r.eventID); err != nil {
						select {
						case errs <- err:
						default:
						}
						break
					}
					// Oldest first, as RoomEventsBetween returns them.
					evs[len(rs)-1-i] = r.se
				}
				out[room].Events = evs
			}
		})
	}
	for room := range raws {
		next <- room
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("prefetch %d rooms: %w", len(req.Rooms), err)
	default:
	}
	for _, p := range out {
		p.HasEvents, p.HasFork = true, true
	}
	return out, nil
}

// prefetchParsers bounds the goroutines that parse a prefetch's events.
const prefetchParsers = 4
