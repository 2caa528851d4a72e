package rooms

import (
	"context"
	"math"

	"github.com/parleyhq/parley/id"
)

// History is read in topological order (as other servers do, "topological
// ordering" in Synapse): by the events' depth, then, among events of the
// same depth (the branches of a fork), by a value derived from the event
// id. An event received late over federation — a fork, a third server's
// event, get_missing_events, an outlier promoted into the timeline,
// history backfilled from another server — takes its place by depth in
// /messages and /context, not where it arrived, and every server holding
// the same events shows them in the same order, whatever order they
// arrived in. /sync keeps arrival (stream) order, as the spec asks of sync
// timelines.
//
// The store keeps each event's topological position (storage, events.topo,
// sql/0015): the PDU's depth, and at least one more than its stored
// prev_events' positions, so that a wrong depth cannot put an event before
// history it names as its past (nor a local event built on such an event
// before it). The tie-break (events.topo_tie, sql/0024) is the first 64
// bits of the MD5 digest of the event id as a signed big-endian integer:
// spread evenly, so that neither branch of a fork comes first by rule;
// the arrival order (seq) settles what is left, two ids of one depth with
// the same 64 bits, and makes positions exact.

// TopoPos is a place in a room's topological order: the gap just after
// the event with that (topo, tie, seq). Paginating backwards from it
// returns that event and those before it; forwards, the events after it.
type TopoPos struct {
	Topo, Tie, Seq int64
}

var (
	// topoStart lies before every event of a room, topoEnd after every one.
	topoStart = TopoPos{Topo: 0, Tie: math.MinInt64, Seq: math.MinInt64}
	topoEnd   = TopoPos{Topo: math.MaxInt64, Tie: math.MaxInt64, Seq: math.MaxInt64}
)

// Less orders positions.
func (p TopoPos) Less(q TopoPos) bool {
	if p.Topo != q.Topo {
		return p.Topo < q.Topo
	}
	if p.Tie != q.Tie {
		return p.Tie < q.Tie
	}
	return p.Seq < q.Seq
}

// before is the position just before the event at p: backwards from it,
// the event itself is not returned; forwards, it is the first.
func (p TopoPos) before() TopoPos {
	if p.Seq == math.MinInt64 {
		return p
	}
	return TopoPos{Topo: p.Topo, Tie: p.Tie, Seq: p.Seq - 1}
}

// TopoEvent is a timeline event with its topological position.
type TopoEvent struct {
	*StoredEvent
	Topo, Tie int64
}

// Pos is the position of the event.
func (e TopoEvent) Pos() TopoPos { return TopoPos{Topo: e.Topo, Tie: e.Tie, Seq: e.Seq} }

// TopologyReader reads a room's timeline in topological order.
type TopologyReader interface {
	// HistoryPage returns up to limit events clients see: Backward, those
	// at or before from, latest first; Forward, those after from, earliest
	// first.
	HistoryPage(ctx context.Context, room id.RoomID, from TopoPos, dir Direction, limit int) ([]TopoEvent, error)
	// TopoPosOfSeq converts a position of the arrival order (the gap after
	// sequence number seq, as the sync engine's prev_batch and older
	// /messages tokens give) into the topological order: the position of
	// the latest (topologically) event clients see with seq <= seq, so
	// that paging back from it misses none of the events that arrived
	// before; when there is none, the position just before the first one
	// that arrived after; the room's end when there is none at all.
	TopoPosOfSeq(ctx context.Context, room id.RoomID, seq int64) (TopoPos, error)
	// EventPos returns the topological position of the event at seq
	// (ErrEventNotFound when there is none).
	EventPos(ctx context.Context, room id.RoomID, seq int64) (TopoPos, error)
}
