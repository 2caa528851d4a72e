package syncer

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// StreamSource is one non-timeline stream of a sync (typing, receipts,
// account data, presence…): it knows its current position and adds to a
// response what changed for the user in a range of its positions. The
// timeline is the engine's own; every other stream plugs in here, so that
// adding one touches neither the builder nor the long-poll loop.
type StreamSource interface {
	// Stream is the token slot the source owns.
	Stream() Stream
	// CurrentPos is the source's highest position; everything at or below
	// it is readable.
	CurrentPos(ctx context.Context) (int64, error)
	// Fill adds to resp what changed for q.User in (q.Since, q.Pos] (or
	// everything current when q.Initial): top-level presence and
	// account_data, or per joined room ephemeral and account_data (through
	// Response.Joined, which adds the room when the timeline did not).
	Fill(ctx context.Context, q StreamQuery, resp *Response) error
}

// CounterSource is a StreamSource whose position is a row of the stream
// counters table (sql/0006) in the database the Store reads: when the
// Store is a CounterPositionStore, the shared read of the positions reads
// every such row with the timeline's position, in one statement.
type CounterSource interface {
	StreamSource
	// CounterName is the stream's row in the counters table.
	CounterName() string
}

// CounterPositionStore is a Store that reads the timeline's position
// (CurrentStreamPos) and named stream counters in one statement (issue #9:
// a query per stream made five round trips of every shared read of the
// positions).
type CounterPositionStore interface {
	// CurrentPositions returns CurrentStreamPos and the counters' positions
	// in the order of names.
	CurrentPositions(ctx context.Context, names []string) (timeline int64, counters []int64, err error)
}

// StreamQuery is what a StreamSource is asked for one sync.
type StreamQuery struct {
	User   id.UserID
	Device id.DeviceID
	// Joined are the rooms the user is joined to at the timeline position,
	// in the filter's allowed rooms only.
	Joined  []id.RoomID
	Since   int64
	Pos     int64
	Initial bool
	Filter  *Filter
	// TimelineSince and TimelinePos are the timeline range of the same
	// sync (TimelineSince 0 on an initial sync): the device lists stream
	// reads the membership changes in it.
	TimelineSince int64
	TimelinePos   int64
	// NoSince: the request had no since token (Initial is also true for
	// full_state and for a since ahead of the source).
	NoSince bool
	// MembersQuiet: the store knows that in (TimelineSince, TimelinePos]
	// neither the user's membership nor any membership of a room the user
	// is joined to changed, so nobody started or stopped sharing a room
	// with them (false when it cannot tell).
	MembersQuiet bool
}

// SetSources plugs the non-timeline streams into the engine; call it while
// wiring, before the first sync.
func (s *Service) SetSources(sources ...StreamSource) { s.sources = sources }

// Joined returns the response's entry for a joined room, adding an empty
// one when the timeline left the room out (nothing new in its timeline).
func (r *Response) Joined(room id.RoomID) *JoinedRoom {
	jr := r.Rooms.Join[room]
	if jr == nil {
		jr = &JoinedRoom{State: emptyList(), Timeline: Timeline{Events: []json.RawMessage{}},
			Ephemeral: emptyList(), AccountData: emptyList()}
		r.Rooms.Join[room] = jr
	}
	return jr
}

// positions returns the current position of every stream, read after the
// call began: a sync woken by a commit must see it. The syncs that one
// commit wakes (every member of a room) all ask at once; they share one
// read that starts after all of them asked (posReads), instead of one
// query per stream each.
func (s *Service) positions(ctx context.Context) (Token, error) {
	return s.posReads.read(ctx, s.readPositions)
}

// readPositions reads the current position of every stream: the
// timeline's from the store, the others from their sources — those whose
// position is a stream counter together with the timeline's, when the
// store can.
func (s *Service) readPositions(ctx context.Context) (Token, error) {
	var t Token
	var names []string
	cs, ok := s.store.(CounterPositionStore)
	if ok {
		for _, src := range s.sources {
			if c, ok := src.(CounterSource); ok {
				names = append(names, c.CounterName())
			}
		}
	}
	var pos int64
	var counters []int64
	var err error
	if len(names) > 0 {
		pos, counters, err = cs.CurrentPositions(ctx, names)
	} else {
		pos, err = s.store.CurrentStreamPos(ctx)
	}
	if err != nil {
		return t, err
	}
	t = t.With(StreamTimeline, pos)
	for _, src := range s.sources {
		if _, ok := src.(CounterSource); ok && len(names) > 0 {
			t = t.With(src.Stream(), counters[0])
			counters = counters[1:]
			continue
		}
		p, err := src.CurrentPos(ctx)
		if err != nil {
			return t, err
		}
		t = t.With(src.Stream(), p)
	}
	return t, nil
}

// fillSources lets every source add its part of the range to resp. A
// since position ahead of a source (an in-memory stream restarted) reads
// as the source's beginning: the client gets the current state again
// rather than an error.
func (b *builder) fillSources(ctx context.Context, resp *Response) error {
	quiet := b.membersQuiet()
	for _, src := range b.s.sources {
		st := src.Stream()
		since := b.since.Pos(st)
		pos := b.at.Pos(st)
		initial := b.initial || b.req.FullState
		if since > pos {
			since, initial = 0, true
		}
		q := StreamQuery{User: b.req.User, Device: b.req.Device, Joined: b.allowedJoined(),
			Since: since, Pos: pos, Initial: initial, Filter: b.filter,
			TimelineSince: b.since.Pos(StreamTimeline), TimelinePos: b.pos, NoSince: b.initial,
			MembersQuiet: quiet}
		if err := src.Fill(ctx, q, resp); err != nil {
			return err
		}
	}
	return nil
}

// allowedJoined are the joined rooms the filter lets through.
func (b *builder) allowedJoined() []id.RoomID {
	rf := b.filter.RoomFilterOf()
	out := make([]id.RoomID, 0, len(b.joined))
	for _, r := range b.joined {
		if rf.RoomAllowed(r) {
			out = append(out, r)
		}
	}
	return out
}

// isEmpty reports whether resp has nothing but positions: a long-poll then
// keeps waiting.
func (r *Response) isEmpty() bool {
	rs := r.Rooms
	return len(rs.Join)+len(rs.Invite)+len(rs.Leave)+len(rs.Knock) == 0 &&
		len(r.Presence.Events)+len(r.AccountData.Events)+len(r.ToDevice.Events) == 0 &&
		len(r.DeviceLists.Changed)+len(r.DeviceLists.Left) == 0
}

// keepUnsourced carries since's position over for every stream that no
// source serves yet (to-device, device lists…), so that a token keeps what
// another version of the server put there.
func (s *Service) keepUnsourced(at, since Token) Token {
	served := map[Stream]bool{StreamTimeline: true}
	for _, src := range s.sources {
		served[src.Stream()] = true
	}
	for st := range numStreams {
		if !served[st] {
			at = at.With(st, since.Pos(st))
		}
	}
	return at
}
