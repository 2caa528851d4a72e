package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
)

// FedQueue implements queue.Store on the tables of sql/0009: the fan-out
// position, the destinations with their cursor and transaction in flight,
// their rooms' windows and their EDUs.
type FedQueue struct {
	pool *pgxpool.Pool
	// stream is the frontier of the process's room writes (UpToFrontierOf).
	stream *streamFrontier
}

var _ queue.Store = (*FedQueue)(nil)

// NewFedQueue returns the outbound federation queue store on pool.
func NewFedQueue(pool *pgxpool.Pool) *FedQueue { return &FedQueue{pool: pool} }

// UpToFrontierOf makes the fan-out read the stream only up to the
// frontier of rooms' writes (stream_frontier.go): a position still being
// written below the highest reserved one would otherwise be passed for
// good. Without it the fan-out reads up to the highest reserved position,
// which is right only when no write is in flight in this process.
func (s *FedQueue) UpToFrontierOf(rooms *Rooms) *FedQueue {
	s.stream = rooms.stream
	return s
}

// serverOf is the SQL of a user id's server name (after the first colon).
const serverOf = `substr(%[1]s, strpos(%[1]s, ':') + 1)`

func sqlServerOf(col string) string { return fmt.Sprintf(serverOf, col) }

const (
	selectFanOutPos   = `SELECT pos FROM federation_fanout`
	selectRoomIDByNID = `SELECT room_id FROM rooms WHERE room_nid = $1`
	lockFanOutPos     = `SELECT pos FROM federation_fanout FOR UPDATE`
	updateFanOutPos   = `UPDATE federation_fanout SET pos = $1`
	selectStreamMax   = `SELECT pos FROM stream_position`
	// selectStreamEvents reads the stream after the fan-out position with
	// the user and membership of each membership change in the graph, and
	// whether the event is one the senders send (see pendingPDUs; $4 is
	// our server name).
	selectStreamEvents = `
SELECT stream_pos, room_nid,
       CASE WHEN event_type = 'm.room.member' AND NOT outlier AND NOT soft_failed AND rejected IS NULL
            THEN state_key END,
       membership,
       NOT outlier AND NOT soft_failed AND rejected IS NULL
           AND (substr(sender, strpos(sender, ':') + 1) = $4 OR event_type = 'm.room.member')
FROM events WHERE stream_pos > $1 AND stream_pos <= $2 ORDER BY stream_pos LIMIT $3`
	countOpenWindow = `
SELECT count(*) FROM federation_destination_rooms WHERE destination = $1 AND room_nid = $2 AND until_pos IS NULL`
	insertWindow = `
INSERT INTO federation_destination_rooms (destination, room_nid, since_pos) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`
	insertOneEventWindow = `
INSERT INTO federation_destination_rooms (destination, room_nid, since_pos, until_pos) VALUES ($1, $2, $3, $3)
ON CONFLICT DO NOTHING`
	closeWindow = `
UPDATE federation_destination_rooms SET until_pos = GREATEST(since_pos, $3)
WHERE destination = $1 AND room_nid = $2 AND until_pos IS NULL`
	insertDestination = `
INSERT INTO federation_destinations (destination, pdu_cursor) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	selectWakeDestinations = `
SELECT DISTINCT destination FROM federation_destination_rooms
WHERE room_nid = ANY($1) AND (until_pos IS NULL OR until_pos > $2)`
	// selectDestinations lists the destinations with something waiting:
	// a transaction in flight, EDUs, or events after the cursor in one of
	// their rooms' windows.
	selectDestinations = `
SELECT d.destination, d.failures, d.retry_at_ts FROM federation_destinations d
WHERE d.txn_id IS NOT NULL
   OR EXISTS (SELECT 1 FROM federation_outbound_edus e WHERE e.destination = d.destination)
   OR EXISTS (SELECT 1 FROM federation_destination_rooms w
              WHERE w.destination = d.destination AND (w.until_pos IS NULL OR w.until_pos > d.pdu_cursor)
                AND EXISTS (SELECT 1 FROM events e WHERE e.room_nid = w.room_nid
                            AND e.stream_pos > GREATEST(d.pdu_cursor, w.since_pos - 1)))
ORDER BY d.destination`
	lockDestination = `
SELECT pdu_cursor, txn_id, txn_pdus, txn_edus, txn_cursor FROM federation_destinations
WHERE destination = $1 FOR UPDATE`
	lockDestinationLease = `
SELECT pdu_cursor, txn_id, txn_pdus, txn_edus, txn_cursor, txn_catch_up, lease_node, lease_until_ts, retry_at_ts
FROM federation_destinations WHERE destination = $1 FOR UPDATE`
	releaseLeases = `
UPDATE federation_destinations SET lease_node = NULL, lease_until_ts = 0 WHERE lease_node = $1`
	updateLease     = `UPDATE federation_destinations SET lease_node = $2, lease_until_ts = $3 WHERE destination = $1`
	selectEventsAt  = `SELECT event_json FROM events WHERE stream_pos = ANY($1) ORDER BY stream_pos`
	selectEDUsBySeq = `
SELECT seq, edu_type, content FROM federation_outbound_edus WHERE destination = $1 AND seq = ANY($2) ORDER BY seq`
	selectNextEDUs = `
SELECT seq, edu_type, content FROM federation_outbound_edus WHERE destination = $1 ORDER BY seq LIMIT $2`
	deleteExpiredEDUs = `
DELETE FROM federation_outbound_edus WHERE destination = $1 AND expires_ts < $2`
	updateTxn = `
UPDATE federation_destinations SET txn_id = $2, txn_pdus = $3, txn_edus = $4, txn_cursor = $5, txn_catch_up = $6
WHERE destination = $1`
	// updateIdle moves an idle destination's cursor past everything the
	// fan-out has seen and releases its lease.
	updateIdle = `
UPDATE federation_destinations SET pdu_cursor = GREATEST(pdu_cursor, $2), lease_node = NULL, lease_until_ts = 0
WHERE destination = $1`
	deleteOldWindows = `
DELETE FROM federation_destination_rooms WHERE destination = $1 AND until_pos IS NOT NULL AND until_pos <= $2`
	ackTxn = `
UPDATE federation_destinations SET pdu_cursor = GREATEST(pdu_cursor, txn_cursor), txn_id = NULL, txn_pdus = NULL,
       txn_edus = NULL, txn_cursor = NULL, txn_catch_up = false, failures = 0, retry_at_ts = 0
WHERE destination = $1 AND txn_id = $2 RETURNING pdu_cursor`
	deleteEDUsBySeq = `DELETE FROM federation_outbound_edus WHERE destination = $1 AND seq = ANY($2)`
	updateBackoff   = `UPDATE federation_destinations SET failures = $2, retry_at_ts = $3 WHERE destination = $1`
	insertEDUDests  = `
INSERT INTO federation_destinations (destination, pdu_cursor)
SELECT d, (SELECT pos FROM federation_fanout) FROM unnest($1::text[]) d ON CONFLICT DO NOTHING`
	// An unsent EDU with the same key is replaced; one in the
	// transaction in flight stays (the retry must be the same).
	deleteCoalescedEDUs = `
DELETE FROM federation_outbound_edus e WHERE e.destination = ANY($1) AND e.coalesce_key = $2
AND NOT EXISTS (SELECT 1 FROM federation_destinations d WHERE d.destination = e.destination AND e.seq = ANY(d.txn_edus))`
	insertEDUs = `
INSERT INTO federation_outbound_edus (destination, edu_type, content, coalesce_key, expires_ts)
SELECT d, $2, $3, $4, $5 FROM unnest($1::text[]) d`
)

var (
	// selectServerMembers: the other users of a server with a membership
	// in a room, with it and the position of its latest change.
	selectServerMembers = `
SELECT user_id, membership, stream_pos FROM room_memberships
WHERE room_nid = $1 AND ` + sqlServerOf("user_id") + ` = $2 AND user_id <> $3`
	// selectFedMembershipAt: a user's membership in a room as of a stream
	// position, from the membership events in the graph.
	selectFedMembershipAt = `
SELECT membership FROM events
WHERE room_nid = $1 AND event_type = 'm.room.member' AND state_key = $2 AND stream_pos <= $3
  AND NOT outlier AND NOT soft_failed AND rejected IS NULL
ORDER BY seq DESC LIMIT 1`
	// selectMembershipAtAny is selectFedMembershipAt with outliers: the
	// state of a room joined over federation is stored as outliers before
	// our join, so as of our join those are the remote members' memberships.
	// Outliers and backfilled history share stream_pos 0: among them the
	// latest in depth order (topo) is the membership in force.
	selectMembershipAtAny = `
SELECT membership FROM events
WHERE room_nid = $1 AND event_type = 'm.room.member' AND state_key = $2 AND stream_pos <= $3
  AND NOT soft_failed AND rejected IS NULL
ORDER BY stream_pos DESC, topo DESC, seq DESC LIMIT 1`
	// selectJoinedServers: the servers that may have had joined members in
	// a room as of a stream position ($2): joined now, or changed since.
	selectJoinedServers = `
SELECT DISTINCT ` + sqlServerOf("user_id") + ` FROM room_memberships
WHERE room_nid = $1 AND (membership = 'join' OR stream_pos > $2)`
	selectLocalMembers = `
SELECT m.user_id FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
WHERE r.room_id = $1 AND m.membership = 'join' AND ` + sqlServerOf("m.user_id") + ` = $2 ORDER BY m.user_id`
	selectRoomServers = `
SELECT DISTINCT ` + sqlServerOf("m.user_id") + ` FROM room_memberships m JOIN rooms r ON r.room_nid = m.room_nid
WHERE r.room_id = $1 AND m.membership = 'join'`
	selectUserServers = `
SELECT DISTINCT ` + sqlServerOf("m.user_id") + ` FROM room_memberships m
WHERE m.membership = 'join' AND m.room_nid IN
      (SELECT room_nid FROM room_memberships WHERE user_id = $1 AND membership = 'join')`

	// pendingPDUs are a destination's events after its cursor ($2) up to
	// the fan-out position ($3), inside its rooms' windows: visible events
	// (no outlier, soft-failed or rejected one), never its own server's,
	// and only ours or membership events (a resident server relays the
	// joins, leaves and knocks it received through send_join and the like;
	// the origin of any other remote event sends it itself). $4 is our
	// server name.
	pendingPDUs = `
FROM federation_destination_rooms w
JOIN events e ON e.room_nid = w.room_nid
WHERE w.destination = $1 AND (w.until_pos IS NULL OR w.until_pos > $2)
  AND e.stream_pos > $2 AND e.stream_pos <= $3
  AND e.stream_pos >= w.since_pos AND (w.until_pos IS NULL OR e.stream_pos <= w.until_pos)
  AND NOT e.outlier AND NOT e.soft_failed AND e.rejected IS NULL
  AND ` + sqlServerOf("e.sender") + ` <> $1
  AND (` + sqlServerOf("e.sender") + ` = $4 OR e.event_type = 'm.room.member')`
	selectPendingPDUs = `
SELECT DISTINCT ON (e.stream_pos) e.stream_pos, e.event_json ` + pendingPDUs + `
ORDER BY e.stream_pos LIMIT $5`
	countPendingPDUs = `
SELECT count(*) FROM (SELECT DISTINCT e.stream_pos ` + pendingPDUs + ` LIMIT $5) s`
	// selectNewestPDUs is catch-up: the newest pending event of each room.
	selectNewestPDUs = `
SELECT stream_pos, event_json FROM (
    SELECT DISTINCT ON (e.room_nid) e.stream_pos, e.event_json ` + pendingPDUs + `
    ORDER BY e.room_nid, e.stream_pos DESC) s
ORDER BY stream_pos LIMIT $5`
)

// FanOut implements queue.Store. It reads the events after the fan-out
// position and applies each membership change in the graph to the
// windows (outliers are not changes: their place in the stream says
// nothing about when they happened):
//
//   - a remote user's join opens a window of their server from the join
//     on, when it has none open;
//   - any other membership of a remote user closes their server's window
//     at that event (included: the leave, kick or ban itself is
//     delivered) unless another of its users is still joined; a leave or
//     ban of a server with no window open (an invite rescinded, a knock
//     refused) gets a window of that one event;
//   - a local user's join opens a window for every server with joined
//     members at that event (a room joined over federation: its members
//     arrived with its state, as outliers). Not the servers joined now:
//     the pass may run behind the stream, and a server that joined after
//     our user must get the room from its own join on, not the history
//     before it (its join opens its window when the pass reaches it),
//     while one that left since must still get what came before its leave.
//
// One transaction, under the fan-out row's lock.
func (s *FedQueue) FanOut(ctx context.Context, origin id.ServerName, limit int) (queue.FanOutResult, error) {
	var res queue.FanOutResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = queue.FanOutResult{}
		var from, upTo int64
		if err := tx.QueryRow(ctx, lockFanOutPos).Scan(&from); err != nil {
			return err
		}
		if s.stream != nil {
			var err error
			if upTo, err = s.stream.current(ctx, s.pool); err != nil {
				return err
			}
		} else if err := tx.QueryRow(ctx, selectStreamMax).Scan(&upTo); err != nil {
			return err
		}
		if upTo <= from {
			return nil
		}
		rows, err := tx.Query(ctx, selectStreamEvents, from, upTo, limit, origin)
		if err != nil {
			return err
		}
		type streamEvent struct {
			pos        int64
			room       int64
			member     *string
			membership *string
			sendable   bool
		}
		evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (streamEvent, error) {
			var e streamEvent
			err := row.Scan(&e.pos, &e.room, &e.member, &e.membership, &e.sendable)
			return e, err
		})
		if err != nil {
			return err
		}
		if len(evs) == limit {
			upTo, res.More = evs[len(evs)-1].pos, true
		}
		// Only the rooms with events to send wake their destinations (an
		// event a remote server sent us wakes nobody).
		var roomNIDs []int64
		seen := map[int64]bool{}
		for _, e := range evs {
			if e.sendable && !seen[e.room] {
				seen[e.room] = true
				roomNIDs = append(roomNIDs, e.room)
			}
			if e.member == nil || e.membership == nil {
				continue
			}
			user, err := id.ParseUserID(*e.member)
			if err != nil {
				continue
			}
			opened, err := applyMembership(ctx, tx, e.room, e.pos, user, *e.membership, origin)
			if err != nil {
				return err
			}
			if len(opened) > 0 {
				var room id.RoomID
				if err := tx.QueryRow(ctx, selectRoomIDByNID, e.room).Scan(&room); err != nil {
					return err
				}
				for _, d := range opened {
					res.Joined = append(res.Joined, queue.RoomServer{Room: room, Server: d})
				}
			}
		}
		if len(roomNIDs) > 0 {
			rows, err := tx.Query(ctx, selectWakeDestinations, roomNIDs, from)
			if err != nil {
				return err
			}
			if res.Wake, err = pgx.CollectRows(rows, pgx.RowTo[id.ServerName]); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, updateFanOutPos, upTo)
		return err
	})
	if err != nil {
		return queue.FanOutResult{}, fmt.Errorf("federation fan-out: %w", err)
	}
	return res, nil
}

// applyMembership applies user's membership change at pos in room to the
// windows (see FanOut) and returns the servers whose window it opened.
func applyMembership(ctx context.Context, tx pgx.Tx, room, pos int64, user id.UserID, membership string, origin id.ServerName) ([]id.ServerName, error) {
	server := user.Server()
	if server == origin {
		if membership != "join" {
			return nil, nil
		}
		rows, err := tx.Query(ctx, selectJoinedServers, room, pos)
		if err != nil {
			return nil, err
		}
		servers, err := pgx.CollectRows(rows, pgx.RowTo[id.ServerName])
		if err != nil {
			return nil, err
		}
		var opened []id.ServerName
		for _, d := range servers {
			if d == origin {
				continue
			}
			joined, err := otherJoinedAt(ctx, tx, room, pos, d, "", selectMembershipAtAny)
			if err != nil {
				return nil, err
			}
			if !joined {
				continue
			}
			ok, err := openWindow(ctx, tx, d, room, pos)
			if err != nil {
				return nil, err
			}
			if ok {
				opened = append(opened, d)
			}
		}
		return opened, nil
	}
	if membership == "join" {
		ok, err := openWindow(ctx, tx, server, room, pos)
		if err != nil || !ok {
			return nil, err
		}
		return []id.ServerName{server}, nil
	}
	joined, err := otherJoinedAt(ctx, tx, room, pos, server, user, selectFedMembershipAt)
	if err != nil || joined {
		return nil, err
	}
	tag, err := tx.Exec(ctx, closeWindow, server, room, pos)
	if err != nil || tag.RowsAffected() > 0 || (membership != "leave" && membership != "ban") {
		return nil, err
	}
	// The server of the target of a membership event is one of its
	// destinations even when it is not in the room: a rescinded invite,
	// a refused knock or a ban must reach the invitee's server, which
	// holds the invite out of band. A window of this one event.
	if _, err := tx.Exec(ctx, insertOneEventWindow, server, room, pos); err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, insertDestination, server, pos-1)
	return nil, err
}

// otherJoinedAt reports whether a user of server other than except was
// joined to room as of pos: their current membership, unless it changed
// after pos (the fan-out runs behind the stream), then their membership
// event as of pos, read by asOf (selectFedMembershipAt or
// selectMembershipAtAny).
func otherJoinedAt(ctx context.Context, tx pgx.Tx, room, pos int64, server id.ServerName, except id.UserID, asOf string) (bool, error) {
	rows, err := tx.Query(ctx, selectServerMembers, room, server, except)
	if err != nil {
		return false, err
	}
	type member struct {
		user       string
		membership string
		pos        int64
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (member, error) {
		var m member
		err := row.Scan(&m.user, &m.membership, &m.pos)
		return m, err
	})
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m.pos <= pos {
			if m.membership == "join" {
				return true, nil
			}
			continue
		}
		var at string
		err := tx.QueryRow(ctx, asOf, room, m.user, pos).Scan(&at)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
		if at == "join" {
			return true, nil
		}
	}
	return false, nil
}

// openWindow opens server's window of room at pos unless one is open,
// and makes sure the destination exists; true when it opened one.
func openWindow(ctx context.Context, tx pgx.Tx, server id.ServerName, room, pos int64) (bool, error) {
	var open int
	if err := tx.QueryRow(ctx, countOpenWindow, server, room).Scan(&open); err != nil {
		return false, err
	}
	if open > 0 {
		return false, nil
	}
	if _, err := tx.Exec(ctx, insertWindow, server, room, pos); err != nil {
		return false, err
	}
	_, err := tx.Exec(ctx, insertDestination, server, pos-1)
	return err == nil, err
}

// Destinations implements queue.Store.
func (s *FedQueue) Destinations(ctx context.Context) ([]queue.Destination, error) {
	rows, err := s.pool.Query(ctx, selectDestinations)
	if err != nil {
		return nil, fmt.Errorf("federation destinations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.Destination, error) {
		var d queue.Destination
		var retry int64
		err := row.Scan(&d.Name, &d.Failures, &retry)
		if retry > 0 {
			d.RetryAt = time.UnixMilli(retry)
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("federation destinations: %w", err)
	}
	return out, nil
}

// NextTxn implements queue.Store.
func (s *FedQueue) NextTxn(ctx context.Context, dest id.ServerName, p queue.BuildParams) (*queue.Txn, error) {
	var txn *queue.Txn
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		txn = nil
		var cursor int64
		var txnID *string
		var txnPDUs, txnEDUs []int64
		var txnCursor *int64
		var txnCatchUp bool
		var leaseNode *string
		var leaseUntil, retryAt int64
		err := tx.QueryRow(ctx, lockDestinationLease, dest).Scan(&cursor, &txnID, &txnPDUs, &txnEDUs, &txnCursor,
			&txnCatchUp, &leaseNode, &leaseUntil, &retryAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		now := p.Now.UnixMilli()
		switch {
		case leaseNode != nil && *leaseNode != p.Node && leaseUntil > now:
			return &queue.BusyError{Until: time.UnixMilli(leaseUntil), Leased: true}
		case retryAt > now:
			return &queue.BusyError{Until: time.UnixMilli(retryAt)}
		}
		if _, err := tx.Exec(ctx, updateLease, dest, p.Node, p.LeaseUntil.UnixMilli()); err != nil {
			return err
		}
		if txnID != nil {
			txn, err = loadTxn(ctx, tx, dest, *txnID, txnPDUs, txnEDUs)
			if txn != nil {
				txn.CatchUp = txnCatchUp
			}
			return err
		}
		txn, err = buildTxn(ctx, tx, dest, cursor, p)
		return err
	})
	var busy *queue.BusyError
	if errors.As(err, &busy) {
		return nil, busy
	}
	if err != nil {
		return nil, fmt.Errorf("next federation transaction for %s: %w", dest, err)
	}
	return txn, nil
}

// loadTxn reads the transaction in flight back, exactly as it was built.
func loadTxn(ctx context.Context, tx pgx.Tx, dest id.ServerName, txnID string, pdus, edus []int64) (*queue.Txn, error) {
	txn := &queue.Txn{ID: txnID}
	if len(pdus) > 0 {
		rows, err := tx.Query(ctx, selectEventsAt, pdus)
		if err != nil {
			return nil, err
		}
		raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return nil, err
		}
		txn.PDUs = toRaw(raws)
	}
	if len(edus) > 0 {
		rows, err := tx.Query(ctx, selectEDUsBySeq, dest, edus)
		if err != nil {
			return nil, err
		}
		if txn.EDUs, _, err = collectEDUs(rows); err != nil {
			return nil, err
		}
	}
	txn.Pending = len(txn.PDUs)
	return txn, nil
}

// buildTxn picks what waits for dest after cursor and records it as the
// transaction in flight; nil (with the cursor moved past everything the
// fan-out has seen) when nothing waits.
func buildTxn(ctx context.Context, tx pgx.Tx, dest id.ServerName, cursor int64, p queue.BuildParams) (*queue.Txn, error) {
	var fanOut int64
	if err := tx.QueryRow(ctx, selectFanOutPos).Scan(&fanOut); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, deleteExpiredEDUs, dest, p.Now.UnixMilli()); err != nil {
		return nil, err
	}
	txn := &queue.Txn{ID: p.TxnID}
	positions, pdus, err := queryPDUs(ctx, tx, selectPendingPDUs, dest, cursor, fanOut, p.Origin, queue.MaxPDUs)
	if err != nil {
		return nil, err
	}
	txn.Pending = len(pdus)
	if len(pdus) == queue.MaxPDUs {
		if err := tx.QueryRow(ctx, countPendingPDUs, dest, cursor, fanOut, p.Origin, p.CatchUpThreshold+1).
			Scan(&txn.Pending); err != nil {
			return nil, err
		}
		if txn.Pending > p.CatchUpThreshold {
			txn.CatchUp = true
			positions, pdus, err = queryPDUs(ctx, tx, selectNewestPDUs, dest, cursor, fanOut, p.Origin, queue.MaxPDUs)
			if err != nil {
				return nil, err
			}
		}
	}
	// A full batch acknowledges up to its last PDU; a partial one saw
	// everything up to the fan-out position. In catch-up the rooms whose
	// newest event lies beyond the batch get it in a later one.
	newCursor := fanOut
	if len(pdus) == queue.MaxPDUs {
		newCursor = positions[len(positions)-1]
	}
	rows, err := tx.Query(ctx, selectNextEDUs, dest, queue.MaxEDUs)
	if err != nil {
		return nil, err
	}
	edus, seqs, err := collectEDUs(rows)
	if err != nil {
		return nil, err
	}
	if len(pdus) == 0 && len(edus) == 0 {
		if _, err := tx.Exec(ctx, updateIdle, dest, newCursor); err != nil {
			return nil, err
		}
		if newCursor > cursor {
			if _, err := tx.Exec(ctx, deleteOldWindows, dest, newCursor); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	txn.PDUs, txn.EDUs = toRaw(pdus), edus
	if positions == nil {
		positions = []int64{}
	}
	if seqs == nil {
		seqs = []int64{}
	}
	if _, err := tx.Exec(ctx, updateTxn, dest, txn.ID, positions, seqs, max(newCursor, cursor), txn.CatchUp); err != nil {
		return nil, err
	}
	return txn, nil
}

func queryPDUs(ctx context.Context, tx pgx.Tx, query string, dest id.ServerName, cursor, fanOut int64,
	origin id.ServerName, limit int) ([]int64, [][]byte, error) {
	rows, err := tx.Query(ctx, query, dest, cursor, fanOut, origin, limit)
	if err != nil {
		return nil, nil, err
	}
	var positions []int64
	var pdus [][]byte
	var pos int64
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&pos, &raw}, func() error {
		positions = append(positions, pos)
		pdus = append(pdus, slices.Clone(raw))
		return nil
	})
	return positions, pdus, err
}

func collectEDUs(rows pgx.Rows) ([]queue.EDU, []int64, error) {
	var edus []queue.EDU
	var seqs []int64
	var seq int64
	var typ string
	var content []byte
	_, err := pgx.ForEachRow(rows, []any{&seq, &typ, &content}, func() error {
		seqs = append(seqs, seq)
		edus = append(edus, queue.EDU{Type: typ, Content: slices.Clone(content)})
		return nil
	})
	return edus, seqs, err
}

// AckTxn implements queue.Store.
func (s *FedQueue) AckTxn(ctx context.Context, dest id.ServerName, txnID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var edus []int64
		var cursor int64
		var cur *string
		if err := tx.QueryRow(ctx, lockDestination, dest).Scan(&cursor, &cur, new([]int64), &edus, new(*int64)); err != nil {
			return err
		}
		if cur == nil || *cur != txnID {
			return fmt.Errorf("transaction %s is not the one in flight", txnID)
		}
		if err := tx.QueryRow(ctx, ackTxn, dest, txnID).Scan(&cursor); err != nil {
			return err
		}
		if len(edus) > 0 {
			if _, err := tx.Exec(ctx, deleteEDUsBySeq, dest, edus); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, deleteOldWindows, dest, cursor)
		return err
	})
	if err != nil {
		return fmt.Errorf("acknowledge transaction %s of %s: %w", txnID, dest, err)
	}
	return nil
}

// ReleaseLeases implements queue.Store.
func (s *FedQueue) ReleaseLeases(ctx context.Context, node string) error {
	if _, err := s.pool.Exec(ctx, releaseLeases, node); err != nil {
		return fmt.Errorf("release federation leases: %w", err)
	}
	return nil
}

// SetBackoff implements queue.Store.
func (s *FedQueue) SetBackoff(ctx context.Context, dest id.ServerName, failures int, retryAt time.Time) error {
	var ms int64
	if !retryAt.IsZero() {
		ms = retryAt.UnixMilli()
	}
	if _, err := s.pool.Exec(ctx, updateBackoff, dest, failures, ms); err != nil {
		return fmt.Errorf("backoff of %s: %w", dest, err)
	}
	return nil
}

// EnqueueEDU implements queue.Store.
func (s *FedQueue) EnqueueEDU(ctx context.Context, dests []id.ServerName, edu queue.EDU) error {
	names := make([]string, len(dests))
	for i, d := range dests {
		names[i] = string(d)
	}
	var key *string
	if edu.CoalesceKey != "" {
		key = &edu.CoalesceKey
	}
	var expires *int64
	if !edu.Expires.IsZero() {
		ms := edu.Expires.UnixMilli()
		expires = &ms
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertEDUDests, names); err != nil {
			return err
		}
		if key != nil {
			if _, err := tx.Exec(ctx, deleteCoalescedEDUs, names, *key); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, insertEDUs, names, edu.Type, []byte(edu.Content), key, expires); err != nil {
			return err
		}
		return capEDUs(ctx, tx, names, edu.Type)
	})
	if err != nil {
		return fmt.Errorf("enqueue %s EDU: %w", edu.Type, err)
	}
	return nil
}

// LocalMembers implements queue.Store.
func (s *FedQueue) LocalMembers(ctx context.Context, room id.RoomID, origin id.ServerName) ([]id.UserID, error) {
	rows, err := s.pool.Query(ctx, selectLocalMembers, room, origin)
	if err != nil {
		return nil, fmt.Errorf("local members of %s: %w", room, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.UserID])
	if err != nil {
		return nil, fmt.Errorf("local members of %s: %w", room, err)
	}
	return out, nil
}

// RoomServers implements queue.Store.
func (s *FedQueue) RoomServers(ctx context.Context, room id.RoomID) ([]id.ServerName, error) {
	return s.servers(ctx, selectRoomServers, string(room))
}

// UserServers implements queue.Store.
func (s *FedQueue) UserServers(ctx context.Context, user id.UserID) ([]id.ServerName, error) {
	return s.servers(ctx, selectUserServers, string(user))
}

func (s *FedQueue) servers(ctx context.Context, query, arg string) ([]id.ServerName, error) {
	rows, err := s.pool.Query(ctx, query, arg)
	if err != nil {
		return nil, fmt.Errorf("servers of %s: %w", arg, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[id.ServerName])
	if err != nil {
		return nil, fmt.Errorf("servers of %s: %w", arg, err)
	}
	return out, nil
}

func toRaw(b [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(b))
	for i, r := range b {
		out[i] = r
	}
	return out
}
