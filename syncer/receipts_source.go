package syncer

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// Receipt is one stored receipt: the latest of its user, type and thread
// in a room.
type Receipt struct {
	Room     id.RoomID
	User     id.UserID
	Type     string // m.read or m.read.private
	ThreadID string // "" unthreaded, "main" or a thread root
	EventID  id.EventID
	TS       int64
}

// ReceiptReader is what the receipts stream reads.
type ReceiptReader interface {
	ReceiptsPos(ctx context.Context) (int64, error)
	// ReceiptsBetween returns the receipts of rooms changed in
	// (after, upTo], in stream order.
	ReceiptsBetween(ctx context.Context, rooms []id.RoomID, after, upTo int64) ([]Receipt, error)
}

// ReceiptTypePrivate is the receipt only its own user may see (spec
// client-server-api "Private read receipts").
const ReceiptTypePrivate = "m.read.private"

// ReceiptSource is the m.receipt stream. Receipts are coalesced: one
// m.receipt event per room and response holds every receipt of the range,
// the latest per user, type and thread, so that a busy room does not
// become a storm of receipt events.
type ReceiptSource struct{ Store ReceiptReader }

var _ CounterSource = ReceiptSource{}

// Stream implements StreamSource.
func (ReceiptSource) Stream() Stream { return StreamReceipts }

// CounterName implements CounterSource.
func (ReceiptSource) CounterName() string { return "receipts" }

// CurrentPos implements StreamSource.
func (s ReceiptSource) CurrentPos(ctx context.Context) (int64, error) {
	return s.Store.ReceiptsPos(ctx)
}

// receiptContent is m.receipt's content: event id → type → user → data.
type receiptContent map[id.EventID]map[string]map[id.UserID]receiptData

type receiptData struct {
	TS       int64  `json:"ts"`
	ThreadID string `json:"thread_id,omitempty"`
}

// Fill implements StreamSource.
func (s ReceiptSource) Fill(ctx context.Context, q StreamQuery, resp *Response) error {
	if len(q.Joined) == 0 {
		return nil
	}
	since := q.Since
	if q.Initial {
		since = 0
	}
	ef := q.Filter.EphemeralFilter()
	if since >= q.Pos || (ef != nil && excludesAll(&ef.EventFilter)) {
		return nil // nothing in the range, or the client wants no ephemeral events
	}
	receipts, err := s.Store.ReceiptsBetween(ctx, q.Joined, since, q.Pos)
	if err != nil {
		return err
	}
	byRoom := map[id.RoomID]receiptContent{}
	var order []id.RoomID
	for _, r := range receipts {
		if r.Type == ReceiptTypePrivate && r.User != q.User {
			continue
		}
		if !ef.Matches(&Event{Type: "m.receipt", RoomID: r.Room}) {
			continue
		}
		c := byRoom[r.Room]
		if c == nil {
			c = receiptContent{}
			byRoom[r.Room] = c
			order = append(order, r.Room)
		}
		if c[r.EventID] == nil {
			c[r.EventID] = map[string]map[id.UserID]receiptData{}
		}
		if c[r.EventID][r.Type] == nil {
			c[r.EventID][r.Type] = map[id.UserID]receiptData{}
		}
		c[r.EventID][r.Type][r.User] = receiptData{TS: r.TS, ThreadID: r.ThreadID}
	}
	for _, room := range order {
		raw, err := json.Marshal(map[string]any{"type": "m.receipt", "content": byRoom[room]})
		if err != nil {
			return err
		}
		jr := resp.Joined(room)
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, raw)
	}
	return nil
}
