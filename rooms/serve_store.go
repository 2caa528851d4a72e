package rooms

import (
	"context"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
)

// ServedEvent is an event as the store holds it for serving it to another
// server: the exact bytes received or built (the redacted form when a
// redaction applies), and where it sits.
type ServedEvent struct {
	Event *event.Event
	// Seq is the per-room sequence number.
	Seq int64
	// Outlier: an event of the room's graph that is not in the timeline
	// (auth chains and state received with a join, fetched auth events).
	Outlier bool
}

// ServerView is what the history visibility rules need about one server
// at one event: the state before the event, reduced to the room's
// history_visibility and the memberships of the server's users.
type ServerView struct {
	// Known is false when the store holds no state for the event (most
	// outliers).
	Known bool
	// HistoryVisibility is content.history_visibility of the
	// m.room.history_visibility event in force ("" when there is none).
	HistoryVisibility string
	// Memberships are the memberships of the server's users in the state
	// before the event, one entry per user.
	Memberships []string
}

// ServeStore is what serving the room graph to other servers reads
// (server-server API, "Backfilling and retrieving missing events",
// "Retrieving events"). Rejected and soft-failed events are never
// returned by any of its methods: they are not part of the room as this
// server sees it.
type ServeStore interface {
	// EventsByID returns the events of room among ids, timeline events and
	// outliers, in no particular order; ids the store does not hold are
	// left out.
	EventsByID(ctx context.Context, room id.RoomID, ids []id.EventID) ([]*ServedEvent, error)
	// EventRoom returns the room an event belongs to; ErrEventNotFound
	// when the store does not hold it (or holds it rejected or
	// soft-failed).
	EventRoom(ctx context.Context, eventID id.EventID) (id.RoomID, error)
	// StateBeforeEvent returns the room state before an event (the state
	// it was authorised against); ErrEventNotFound for an unknown event or
	// an outlier whose state is not known.
	StateBeforeEvent(ctx context.Context, room id.RoomID, eventID id.EventID) (State, error)
	// ServerViews returns, for each of ids the store holds, server's view
	// of the state before it.
	ServerViews(ctx context.Context, room id.RoomID, server id.ServerName, ids []id.EventID) (map[id.EventID]ServerView, error)
}
