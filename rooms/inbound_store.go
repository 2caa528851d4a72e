package rooms

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// ErrEventIDTaken: an event with that id is stored in another room (room
// versions 1 and 2, whose event ids the sending server chooses). The
// inbound pipeline drops such an event.
var ErrEventIDTaken = errors.New("rooms: the event id is taken in another room")

// KnownEvent is an event of a room as the store holds it, whatever its
// place: in the timeline, an outlier, soft-failed or rejected
// (sql/0008_remote_events.sql).
type KnownEvent struct {
	// Event is the stored event, redacted when a redaction applies.
	Event *event.Event
	Seq   int64
	// Outlier: stored without a place in the timeline.
	Outlier bool
	// SoftFailed: allowed by the state before it, not by current state.
	SoftFailed bool
	// Rejected is why the event failed the auth checks; "" when it did not.
	Rejected string
	// StateKnown: the store holds the state before the event (every
	// timeline and soft-failed event, and outliers stored with one).
	StateKnown bool
}

// OutlierEvent is an event to store outside the timeline.
type OutlierEvent struct {
	Event *event.Event
	// Rejected, when not "", stores the event as rejected with this reason.
	Rejected string
	// StateBefore, when not nil, is stored as the state before the event:
	// a prev_event whose history could not be fetched, whose state was
	// (server-server API, "Retrieving missing events").
	StateBefore State
}

// RemoteDecision is how AppendRemote stores an event, decided under the
// room's write lock against its head.
type RemoteDecision struct {
	// StateBefore is the state the event was checked against (the
	// resolution of the states after its prev_events). A rejected event
	// keeps it too when known: the events after it see that state (spec
	// "Rejection": the state is not updated with a rejected event).
	StateBefore State
	// Rejected, when not "", stores the event rejected: not state, not a
	// forward extremity, never shown.
	Rejected string
	// SoftFailed stores it soft-failed: never shown, not a forward
	// extremity, not current state.
	SoftFailed bool
	// CurrentState and Extremities are the room's head after the event
	// (ignored for a rejected or soft-failed one).
	CurrentState State
	Extremities  []*event.Event
	// ApplyRedaction: the event is a redaction that takes effect.
	ApplyRedaction bool
	// RedactedBy, when set, is a redaction stored before the event that
	// takes effect on it: the event is stored redacted.
	RedactedBy id.EventID
}

// RemoteStore persists events received over federation. Like Append, its
// writes take the room's row lock, assign per-room sequence numbers and
// take the global stream position last.
type RemoteStore interface {
	// KnownEvents returns the events of room among ids the store holds, in
	// any state (timeline, outlier, soft-failed, rejected).
	KnownEvents(ctx context.Context, room id.RoomID, ids []id.EventID) (map[id.EventID]*KnownEvent, error)
	// StoredStateBefore returns the state before an event of room when the
	// store holds it (ok false otherwise: an unknown event or an outlier
	// stored without state).
	StoredStateBefore(ctx context.Context, room id.RoomID, eventID id.EventID) (st State, ok bool, err error)
	// StoreOutliers stores events outside the timeline, in order (an
	// event's StateBefore may name events stored earlier in evs); events
	// the store holds already are skipped. newRoom creates the room row
	// when the room is unknown (a room joined over federation).
	StoreOutliers(ctx context.Context, room id.RoomID, newRoom *roomversion.Version, evs []OutlierEvent) error
	// RedactionsOf returns the room's shown redactions of target (those
	// that arrived before it).
	RedactionsOf(ctx context.Context, room id.RoomID, target id.EventID) ([]*event.Event, error)
	// AppendRemote stores ev as decide says, decide being called with the
	// room's head under the room's write lock. An error of decide aborts
	// the transaction. An event stored as an outlier moves into the graph
	// (keeping its sequence number, with a new stream position).
	AppendRemote(ctx context.Context, room id.RoomID, ev *event.Event, decide func(h *Head) (*RemoteDecision, error)) (*Persisted, error)
}
