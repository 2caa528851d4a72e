package rooms

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// /messages tokens (clients treat them as opaque):
//
//   - "o<topo>_<tie>_<seq>" (base 36, tie and seq signed): a topological
//     position (topological.go), what /messages and /context hand out;
//     "o<topo>_<seq>", what they handed out before the tie-break
//     (sql/0024), is read as the nearest position of today's order
//     (legacyTopoPosition);
//   - "t<seq>" and "h<seq>": a position in the room's arrival order — the
//     gap just after the event with that sequence number ("h": negative,
//     history backfilled before the room's first event). The sync engine's
//     prev_batch is one (PositionToken(seq-1) for a timeline starting at
//     seq); tokens of earlier versions of Parley are too. They are read by
//     converting to the topological order (TopologyReader.TopoPosOfSeq);
//   - a sync token (next_batch), read through its stream position.
//
// Anything else, and a position the room cannot have handed out (beyond
// its latest event), is M_INVALID_PARAM.

// PositionToken encodes a position of the arrival order; the sync
// engine's prev_batch for a timeline starting at event seq is
// PositionToken(seq-1).
func PositionToken(pos int64) string {
	if pos < 0 {
		return "h" + strconv.FormatInt(-pos, 36)
	}
	return "t" + strconv.FormatInt(pos, 36)
}

func invalidToken() error { return mxerr.InvalidParam.Msg("invalid pagination token") }

// ParsePositionToken decodes PositionToken's tokens.
func ParsePositionToken(tok string) (int64, error) {
	sign := int64(1)
	rest, ok := strings.CutPrefix(tok, "t")
	if !ok {
		if rest, ok = strings.CutPrefix(tok, "h"); !ok {
			return 0, invalidToken()
		}
		sign = -1
	}
	pos, err := strconv.ParseInt(rest, 36, 64)
	if err != nil || pos < 0 || (sign < 0 && pos == 0) || strconv.FormatInt(pos, 36) != rest {
		return 0, invalidToken()
	}
	return sign * pos, nil
}

// TopoToken encodes a topological position.
func TopoToken(p TopoPos) string {
	return "o" + strconv.FormatInt(p.Topo, 36) + "_" + strconv.FormatInt(p.Tie, 36) + "_" + strconv.FormatInt(p.Seq, 36)
}

// ParseTopoToken decodes TopoToken's tokens, and with legacy set those of
// the order before the tie-break, "o<topo>_<seq>", whose Tie is left 0;
// only the canonical spelling is accepted, so a token altered by hand does
// not pass as another.
func ParseTopoToken(tok string) (p TopoPos, legacy bool, err error) {
	rest, ok := strings.CutPrefix(tok, "o")
	if !ok {
		return TopoPos{}, false, invalidToken()
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 2 && len(parts) != 3 {
		return TopoPos{}, false, invalidToken()
	}
	n := make([]int64, len(parts))
	for i, part := range parts {
		v, err := strconv.ParseInt(part, 36, 64)
		if err != nil || strconv.FormatInt(v, 36) != part {
			return TopoPos{}, false, invalidToken()
		}
		n[i] = v
	}
	if n[0] < 0 {
		return TopoPos{}, false, invalidToken()
	}
	if len(n) == 2 {
		return TopoPos{Topo: n[0], Seq: n[1]}, true, nil
	}
	return TopoPos{Topo: n[0], Tie: n[1], Seq: n[2]}, false, nil
}

// legacyTopoPosition places a position of the (topo, seq) order of the
// tokens before the tie-break in today's (topo, tie, seq) order: just after
// the event at seq, or just before the one after it (a backward page's
// end), when that event has the token's topo; else before every event of
// that topo. Only a page boundary inside a fork's depth may move, by the
// events of that depth.
func (s *Service) legacyTopoPosition(ctx context.Context, room id.RoomID, p TopoPos) (TopoPos, error) {
	switch p.Seq {
	case math.MinInt64:
		p.Tie = math.MinInt64
		return p, nil
	case math.MaxInt64:
		p.Tie = math.MaxInt64
		return p, nil
	}
	for _, seq := range []int64{p.Seq, p.Seq + 1} {
		e, err := s.store.EventPos(ctx, room, seq)
		if errors.Is(err, ErrEventNotFound) {
			continue
		}
		if err != nil {
			return p, err
		}
		if e.Topo == p.Topo {
			p.Tie = e.Tie
			return p, nil
		}
	}
	p.Tie = math.MinInt64
	return p, nil
}

// topoPosition reads a /messages token of room, whose latest event has
// sequence number headSeq, as a topological position.
func (s *Service) topoPosition(ctx context.Context, room id.RoomID, tok string, headSeq int64) (TopoPos, error) {
	if strings.HasPrefix(tok, "o") {
		p, legacy, err := ParseTopoToken(tok)
		if err != nil {
			return p, err
		}
		if p.Seq != topoEnd.Seq && p.Seq != topoStart.Seq {
			if err := s.checkHanded(ctx, room, p.Seq, headSeq); err != nil {
				return p, err
			}
		}
		if legacy {
			return s.legacyTopoPosition(ctx, room, p)
		}
		return p, nil
	}
	seq, err := s.seqPosition(ctx, room, tok, headSeq)
	if err != nil {
		return TopoPos{}, err
	}
	return s.store.TopoPosOfSeq(ctx, room, seq)
}

// checkHanded refuses a token position past the room's latest event: no
// token of the room names one. headSeq may lag behind the database on a
// node of a cluster that has not heard of the latest events yet: a
// position past it is checked against the database before it is refused.
func (s *Service) checkHanded(ctx context.Context, room id.RoomID, seq, headSeq int64) error {
	if seq <= headSeq {
		return nil
	}
	latest, err := s.store.SeqAtStreamPos(ctx, room, math.MaxInt64)
	if err != nil {
		return err
	}
	if seq > latest {
		return invalidToken()
	}
	return nil
}

// seqPosition reads an arrival-order token (t, h) or a sync token of
// room as a sequence number.
func (s *Service) seqPosition(ctx context.Context, room id.RoomID, tok string, headSeq int64) (int64, error) {
	if strings.HasPrefix(tok, "t") || strings.HasPrefix(tok, "h") {
		seq, err := ParsePositionToken(tok)
		if err != nil {
			return 0, err
		}
		if err := s.checkHanded(ctx, room, seq, headSeq); err != nil {
			return 0, err
		}
		return seq, nil
	}
	if s.streamToken != nil {
		if pos, ok := s.streamToken(tok); ok {
			return s.store.SeqAtStreamPos(ctx, room, pos)
		}
	}
	return 0, invalidToken()
}

// position reads any /messages or sync token of room as a sequence number
// (for GET /members?at=, whose state is read by sequence): a topological
// position counts as the event it follows.
func (s *Service) position(ctx context.Context, room id.RoomID, tok string) (int64, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return 0, err
	}
	if strings.HasPrefix(tok, "o") {
		p, err := s.topoPosition(ctx, room, tok, h.Seq)
		if err != nil {
			return 0, err
		}
		return max(min(p.Seq, h.Seq), math.MinInt64+1), nil
	}
	return s.seqPosition(ctx, room, tok, h.Seq)
}
