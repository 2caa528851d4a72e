package syncer

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
)

// TypingView is the typing state the typing stream reads (the ephemeral
// package's in-memory Typing).
type TypingView interface {
	TypingPos() int64
	// TypingIn returns the room's current typers and the position of its
	// latest change.
	TypingIn(room id.RoomID) ([]id.UserID, int64)
}

// TypingSource is the m.typing stream: per joined room, the current typers
// whenever the set changed within the range (spec client-server-api
// "Typing Notifications", m.typing in a joined room's ephemeral section).
type TypingSource struct{ View TypingView }

var _ StreamSource = TypingSource{}

// Stream implements StreamSource.
func (TypingSource) Stream() Stream { return StreamTyping }

// CurrentPos implements StreamSource.
func (s TypingSource) CurrentPos(context.Context) (int64, error) { return s.View.TypingPos(), nil }

// Fill implements StreamSource. An initial sync shows rooms where someone
// types now; an incremental one every room whose typers changed, also to
// nobody (the client must learn that typing stopped).
func (s TypingSource) Fill(_ context.Context, q StreamQuery, resp *Response) error {
	ef := q.Filter.EphemeralFilter()
	for _, room := range q.Joined {
		users, changed := s.View.TypingIn(room)
		if changed > q.Pos || (q.Initial && len(users) == 0) || (!q.Initial && changed <= q.Since) {
			continue
		}
		if !ef.Matches(&Event{Type: "m.typing", RoomID: room}) {
			continue
		}
		if users == nil {
			users = []id.UserID{}
		}
		raw, err := json.Marshal(map[string]any{"type": "m.typing", "content": map[string]any{"user_ids": users}})
		if err != nil {
			return err
		}
		jr := resp.Joined(room)
		jr.Ephemeral.Events = append(jr.Ephemeral.Events, raw)
	}
	return nil
}
