package ephemeral

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/syncer"
)

// Receipt types (spec client-server-api "Receipts", "Fully read markers").
const (
	ReceiptRead        = "m.read"
	ReceiptReadPrivate = syncer.ReceiptTypePrivate
	MarkerFullyRead    = "m.fully_read"
	// ThreadMain is the thread_id of receipts in the main timeline.
	ThreadMain = "main"
)

// ReceiptStore persists receipts, each with a position in the receipts
// stream.
type ReceiptStore interface {
	PutReceipt(ctx context.Context, r syncer.Receipt) (int64, error)
}

// RoomReader is what receipts need of the rooms domain: the user's joined
// rooms and the events they may see.
type RoomReader interface {
	Membership
	Event(ctx context.Context, user id.UserID, room id.RoomID, eventID id.EventID) (*rooms.StoredEvent, error)
}

// FullyReadSetter stores the m.fully_read marker, which the spec keeps as
// room account data.
type FullyReadSetter interface {
	SetFullyRead(ctx context.Context, user id.UserID, room id.RoomID, event id.EventID) error
}

// Receipts handles receipts and read markers.
type Receipts struct {
	store     ReceiptStore
	rooms     RoomReader
	fullyRead FullyReadSetter
	notifier  Notifier
	// remote hears local users' public receipts; nil until
	// SetRemoteSender.
	remote RemoteSender
}

// NewReceipts returns the receipts service.
func NewReceipts(store ReceiptStore, rooms RoomReader, fullyRead FullyReadSetter, notifier Notifier) *Receipts {
	return &Receipts{store: store, rooms: rooms, fullyRead: fullyRead, notifier: notifier}
}

// Post handles POST /rooms/{roomId}/receipt/{receiptType}/{eventId}. The
// user must be joined and able to see the event; m.fully_read sets the
// read marker instead (and takes no thread).
func (r *Receipts) Post(ctx context.Context, user id.UserID, room id.RoomID, typ string, event id.EventID, threadID *string) error {
	switch typ {
	case ReceiptRead, ReceiptReadPrivate, MarkerFullyRead:
	default:
		return mxerr.InvalidParam.Msg("receiptType must be m.read, m.read.private or m.fully_read")
	}
	if threadID != nil && (*threadID == "" || typ == MarkerFullyRead) {
		return mxerr.InvalidParam.Msg("thread_id must be \"main\" or a thread root, and only on m.read receipts")
	}
	se, err := r.visibleEvent(ctx, user, room, event)
	if err != nil {
		return err
	}
	if typ == MarkerFullyRead {
		return r.fullyRead.SetFullyRead(ctx, user, room, event)
	}
	thread := ""
	if threadID != nil {
		thread = *threadID
		if err := checkThread(se, thread); err != nil {
			return err
		}
	}
	rec := syncer.Receipt{Room: room, User: user, Type: typ, ThreadID: thread, EventID: event, TS: time.Now().UnixMilli()}
	pos, err := r.store.PutReceipt(ctx, rec)
	if err != nil {
		return err
	}
	r.notifier.Notify(syncer.Change{Stream: syncer.StreamReceipts, Pos: pos, Room: room})
	if r.remote != nil && typ == ReceiptRead {
		r.remote.SendReceipt(ctx, rec)
	}
	return nil
}

// SetReadMarkers handles POST /rooms/{roomId}/read_markers: any of the
// fully read marker, a public and a private read receipt (unthreaded).
func (r *Receipts) SetReadMarkers(ctx context.Context, user id.UserID, room id.RoomID, fullyRead, read, readPrivate id.EventID) error {
	for _, m := range []struct {
		typ   string
		event id.EventID
	}{{MarkerFullyRead, fullyRead}, {ReceiptRead, read}, {ReceiptReadPrivate, readPrivate}} {
		if m.event == "" {
			continue
		}
		if err := r.Post(ctx, user, room, m.typ, m.event, nil); err != nil {
			return err
		}
	}
	return nil
}

// visibleEvent returns the event when user is joined to room and may see
// it: a receipt must not confirm events the user cannot read.
func (r *Receipts) visibleEvent(ctx context.Context, user id.UserID, room id.RoomID, event id.EventID) (*rooms.StoredEvent, error) {
	joined, err := r.rooms.JoinedRooms(ctx, user)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(joined, room) {
		return nil, mxerr.Forbidden.Msg("You are not joined to this room")
	}
	return r.rooms.Event(ctx, user, room, event)
}

// checkThread validates a threaded receipt (spec "Threaded read
// receipts"): "main", or the id of a thread root to which the event is
// the root itself or related with rel_type m.thread.
func checkThread(se *rooms.StoredEvent, thread string) error {
	if thread == ThreadMain {
		return nil
	}
	root, err := id.ParseEventID(thread)
	if err != nil {
		return mxerr.InvalidParam.Msg("thread_id must be \"main\" or an event id")
	}
	if se.Event.EventID() == root {
		return nil
	}
	var c struct {
		RelatesTo struct {
			RelType string     `json:"rel_type"`
			EventID id.EventID `json:"event_id"`
		} `json:"m.relates_to"`
	}
	_ = json.Unmarshal(se.Event.Content(), &c)
	if c.RelatesTo.RelType != "m.thread" || c.RelatesTo.EventID != root {
		return mxerr.InvalidParam.Msg("the event is not in that thread")
	}
	return nil
}
