package rooms

import (
	"context"
	"math"

	"github.com/parleyhq/parley/id"
)

// History is read in topological order (as other servers do, "topological
// ordering" in Synapse): by the events' depth, then by arrival (seq). An
// event received late over federation — a fork, a third server's event,
// get_missing_events, an outlier promoted into the timeline, history
// backfilled from another server — takes its place by depth in /messages
// and /context, not where it arrived. /sync keeps arrival (stream) order,
// as the spec asks of sync timelines.
//
// The store keeps each event's topological position (storage, events.topo,
// sql/0015): the PDU's depth, and for an event received over federation
// at least one more than its stored prev_events' positions, so that a
// wrong depth cannot put an event before history it names as its past.

// TopoPos is a place in a room's topological order: the gap just after
// the event with that (topo, seq). Paginating backwards from it returns
// that event and those before it; forwards, the events after it.
type TopoPos struct {
	Topo, Seq int64
}

var (
	// topoStart lies before every event of a room, topoEnd after every one.
	topoStart = TopoPos{Topo: 0, Seq: math.MinInt64}
	topoEnd   = TopoPos{Topo: math.MaxInt64, Seq: math.MaxInt64}
)

// Less orders positions.
func (p TopoPos) Less(q TopoPos) bool {
	return p.Topo < q.Topo || (p.Topo == q.Topo && p.Seq < q.Seq)
}

// before is the position just before the event at p: backwards from it,
// the event itself is not returned; forwards, it is the first.
func (p TopoPos) before() TopoPos {
	if p.Seq == math.MinInt64 {
		return p
	}
	return TopoPos{Topo: p.Topo, Seq: p.Seq - 1}
}

// TopoEvent is a timeline event with its topological position.
type TopoEvent struct {
	*StoredEvent
	Topo int64
}

// Pos is the position of the event.
func (e TopoEvent) Pos() TopoPos { return TopoPos{Topo: e.Topo, Seq: e.Seq} }

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
	// EventTopo returns the topological position of the event at seq.
	EventTopo(ctx context.Context, room id.RoomID, seq int64) (int64, error)
}
