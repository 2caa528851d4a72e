package rooms

import (
	"context"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// A timeline position is a gap in a room's sequence: position p lies
// between the events with sequence numbers p and p+1. Paginating backwards
// from p returns events p, p-1, …; forwards, p+1, p+2, …. So one position
// serves both directions and a token stays valid across restarts (it is
// the room's own gap-free sequence). Tokens are "t" and the position in
// base 36; clients treat them as opaque.

// PositionToken encodes a timeline position; the sync engine's prev_batch
// for a timeline starting at event seq is PositionToken(seq-1). History
// backfilled from other servers sits before the room's first event, at
// negative positions: "h" and the position's magnitude (backfill.go).
func PositionToken(pos int64) string {
	if pos < 0 {
		return "h" + strconv.FormatInt(-pos, 36)
	}
	return "t" + strconv.FormatInt(pos, 36)
}

// ParsePositionToken decodes PositionToken's tokens.
func ParsePositionToken(tok string) (int64, error) {
	sign := int64(1)
	rest, ok := strings.CutPrefix(tok, "t")
	if !ok {
		if rest, ok = strings.CutPrefix(tok, "h"); !ok {
			return 0, mxerr.InvalidParam.Msg("invalid pagination token")
		}
		sign = -1
	}
	pos, err := strconv.ParseInt(rest, 36, 64)
	if err != nil || pos < 0 || (sign < 0 && pos == 0) {
		return 0, mxerr.InvalidParam.Msg("invalid pagination token")
	}
	return sign * pos, nil
}

// position reads a timeline token of room: this service's own position
// tokens, or a sync token (whose stream position maps to the latest event
// of the room at or before it — the spec lets clients paginate from
// /sync's next_batch).
func (s *Service) position(ctx context.Context, room id.RoomID, tok string) (int64, error) {
	if strings.HasPrefix(tok, "t") || strings.HasPrefix(tok, "h") {
		return ParsePositionToken(tok)
	}
	if s.streamToken != nil {
		if pos, ok := s.streamToken(tok); ok {
			return s.store.SeqAtStreamPos(ctx, room, pos)
		}
	}
	return 0, mxerr.InvalidParam.Msg("invalid pagination token")
}
