package rooms

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Store errors. The store returns them wrapped; the service turns them
// into Matrix errors.
var (
	// ErrRoomNotFound: no room with that id (or alias) on this server.
	ErrRoomNotFound = errors.New("rooms: room not found")
	// ErrEventNotFound: no event with that id in that room.
	ErrEventNotFound = errors.New("rooms: event not found")
	// ErrRoomExists: CreateRoom for a room id that is taken.
	ErrRoomExists = errors.New("rooms: room already exists")
	// ErrAliasExists: the alias points at a room already.
	ErrAliasExists = errors.New("rooms: alias already exists")
	// ErrAliasNotFound: no such alias.
	ErrAliasNotFound = errors.New("rooms: alias not found")
)

// Head is a room as the next event must be built against: its version,
// current state and forward extremities, as of sequence number Seq. The
// store hands it to a BuildFunc while it holds the room's write lock.
type Head struct {
	RoomID  id.RoomID
	Version roomversion.Version
	State   State
	// Extremities are the forward extremities: the events the next
	// event's prev_events name.
	Extremities []*event.Event
	// Topo is the highest topological position (topological.go) among
	// Extremities: an event built on them is placed above it, whatever
	// depth they claim.
	Topo int64
	// Seq is the per-room sequence number of the latest event.
	Seq int64
}

// BuildFunc builds, checks and signs the next event of a room against its
// head. Returning an error aborts the whole Append, nothing is written.
type BuildFunc func(h *Head) (*event.Event, error)

// TxnKey is a client transaction id, scoped to the device that sent it
// (client-server API, "Transaction identifiers").
type TxnKey struct {
	User   id.UserID
	Device id.DeviceID
	TxnID  string
}

// AppendRequest is one persisting transaction: the events Build returns,
// in order, each built against the head the previous one left.
type AppendRequest struct {
	RoomID id.RoomID
	// NewRoom creates the room (Build[0] must return its create event);
	// Append fails with ErrRoomExists when the room id is taken.
	NewRoom *roomversion.Version
	// Txn, when set, makes the request idempotent: if the transaction id
	// was used before, Append returns the event it created, with
	// Deduplicated set, and builds nothing.
	Txn   *TxnKey
	Build []BuildFunc
}

// Persisted is an event as Append stored it.
type Persisted struct {
	Event *event.Event
	// Seq is the per-room sequence number, StreamPos the global stream
	// position; both 0 for a deduplicated retry.
	Seq, StreamPos int64
	// Deduplicated: the transaction id was used before and EventID is the
	// event that first attempt created.
	Deduplicated bool
	EventID      id.EventID
}

// StoredEvent is an event read back with where it sits.
type StoredEvent struct {
	Event     *event.Event
	RoomID    id.RoomID
	Seq       int64
	StreamPos int64
	// Redaction is the redaction applied to the event, nil when none;
	// Event is then already redacted.
	Redaction *event.Event
	// PrevContent is the content of the state event this one replaced.
	PrevContent []byte
	// TxnDevice and TxnID are set for events a local client sent with a
	// transaction id (unsigned.transaction_id goes to that device only).
	TxnDevice id.DeviceID
	TxnID     string
}

// Direction of a timeline read.
type Direction byte

const (
	Backward Direction = 'b'
	Forward  Direction = 'f'
)

// EventWriter persists events.
type EventWriter interface {
	// Append runs one persisting transaction (see AppendRequest). The
	// room's row lock is taken before the head is read, so building
	// against the head is race-free; the global stream position is
	// assigned last; nothing is acknowledged before COMMIT.
	Append(ctx context.Context, req AppendRequest) ([]Persisted, error)
}

// RoomReader reads rooms and their current state.
type RoomReader interface {
	// Head returns the room's current head (from a cache that is correct
	// after every commit). ErrRoomNotFound when unknown.
	Head(ctx context.Context, room id.RoomID) (*Head, error)
	// RoomsOf returns the rooms where user's current membership is one of
	// memberships.
	RoomsOf(ctx context.Context, user id.UserID, memberships ...string) ([]id.RoomID, error)
}

// EventReader reads events.
type EventReader interface {
	// Event returns an event of a room; ErrEventNotFound when unknown.
	Event(ctx context.Context, room id.RoomID, eventID id.EventID) (*StoredEvent, error)
	// Timeline returns up to limit events of room from position from (an
	// event sequence number: Backward returns seq <= from newest first,
	// Forward returns seq > from oldest first).
	Timeline(ctx context.Context, room id.RoomID, from int64, dir Direction, limit int) ([]*StoredEvent, error)
	// StateHistory returns every state event of room with one of the
	// given types (and, when stateKey is not nil, that state key) with
	// seq <= upTo, oldest first; the visibility rules read membership and
	// history_visibility at an event from it.
	StateHistory(ctx context.Context, room id.RoomID, types []string, stateKey *string, upTo int64) ([]*StoredEvent, error)
	// StateBefore returns the room state before the event with sequence
	// number seq (its snapshot); seq = Head.Seq+1 gives current state.
	StateBefore(ctx context.Context, room id.RoomID, seq int64) (State, error)
	// SeqAtStreamPos is the sequence number of room's latest event with a
	// stream position at or below pos (0 when none).
	SeqAtStreamPos(ctx context.Context, room id.RoomID, pos int64) (int64, error)
	// EventAtTime returns the event of room closest to ts (ms) in dir.
	EventAtTime(ctx context.Context, room id.RoomID, ts int64, dir Direction) (*StoredEvent, error)
}

// Store is every store the service needs.
type Store interface {
	EventWriter
	RoomReader
	EventReader
	MembershipWriter
	AliasStore
	DirectoryStore
	ServeStore
	BackfillStore
	TopologyReader
}

// MembershipWriter changes per-user membership flags outside events.
type MembershipWriter interface {
	// Forget marks the room forgotten by user; the caller checks that the
	// user has left.
	Forget(ctx context.Context, room id.RoomID, user id.UserID) error
}

// AliasStore maps room aliases to rooms.
type AliasStore interface {
	CreateAlias(ctx context.Context, alias id.RoomAlias, room id.RoomID, creator id.UserID) error
	ResolveAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, error)
	// DeleteAlias returns the alias's room and creator as they were.
	DeleteAlias(ctx context.Context, alias id.RoomAlias) (room id.RoomID, creator id.UserID, err error)
	AliasCreator(ctx context.Context, alias id.RoomAlias) (id.UserID, error)
	RoomAliases(ctx context.Context, room id.RoomID) ([]id.RoomAlias, error)
	// MoveAliases points every alias of from at to (room upgrades).
	MoveAliases(ctx context.Context, from, to id.RoomID) error
}

// DirectoryStore keeps which rooms are published in the room directory.
type DirectoryStore interface {
	SetPublished(ctx context.Context, room id.RoomID, published bool) error
	Published(ctx context.Context, room id.RoomID) (bool, error)
	// PublishedRooms returns the published rooms, ordered by room id,
	// after the room id since ("" = from the start).
	PublishedRooms(ctx context.Context, since id.RoomID, limit int) ([]id.RoomID, error)
}
