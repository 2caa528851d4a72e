package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/federation/queue"
)

// The outbound queue's upkeep: whether any room is shared with another
// server (the queue skips the fan-out of our events when none is), and the
// cap of droppable EDUs per destination.

const (
	selectSharesRooms = `SELECT EXISTS (SELECT 1 FROM federation_destination_rooms WHERE until_pos IS NULL)`
	// capDroppableEDUs deletes, for each destination of $1, the oldest
	// droppable EDUs ($2: typing, presence, then receipts, in that order
	// of sacrifice) beyond $3 of them; never one of the transaction in
	// flight (its retry must be the same), never any other type.
	capDroppableEDUs = `
WITH droppable AS (
    SELECT e.destination, e.seq,
           count(*) OVER (PARTITION BY e.destination) AS n,
           row_number() OVER (PARTITION BY e.destination
                              ORDER BY array_position($2::text[], e.edu_type), e.seq) AS r
    FROM federation_outbound_edus e
    JOIN federation_destinations d ON d.destination = e.destination
    WHERE e.destination = ANY($1) AND e.edu_type = ANY($2)
      AND NOT (e.seq = ANY(coalesce(d.txn_edus, '{}')))
)
DELETE FROM federation_outbound_edus x USING droppable
WHERE x.destination = droppable.destination AND x.seq = droppable.seq AND droppable.r <= droppable.n - $3`
)

// SharesRooms implements queue.Store: a window is open for some server.
func (s *FedQueue) SharesRooms(ctx context.Context) (bool, error) {
	var shared bool
	if err := s.pool.QueryRow(ctx, selectSharesRooms).Scan(&shared); err != nil {
		return false, fmt.Errorf("federation shared rooms: %w", err)
	}
	return shared, nil
}

// MaxDroppableEDUs bounds the typing, presence and receipt EDUs waiting
// for one destination (a server that has been down for long): beyond it
// the oldest are dropped, typing first, then presence, then receipts.
// To-device messages and device list updates are never dropped. Tests
// lower it.
var MaxDroppableEDUs = queue.MaxDroppableEDUs

// capEDUs applies MaxDroppableEDUs to names after an enqueue of a
// droppable EDU.
func capEDUs(ctx context.Context, tx pgx.Tx, names []string, eduType string) error {
	if !queue.Droppable(eduType) {
		return nil
	}
	_, err := tx.Exec(ctx, capDroppableEDUs, names, queue.DroppableEDUTypes, MaxDroppableEDUs)
	return err
}
