package syncer

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/parleyhq/parley/id"
)

// PresenceEntry is one user's presence as clients see it (spec
// client-server-api m.presence).
type PresenceEntry struct {
	User            id.UserID
	Presence        string
	LastActiveAgo   int64 // ms; -1 when never active
	CurrentlyActive bool
	StatusMsg       string
}

// Content is the content of the entry's m.presence event, which GET
// /presence/{userId}/status answers with too.
func (e PresenceEntry) Content() map[string]any {
	content := map[string]any{"presence": e.Presence, "currently_active": e.CurrentlyActive}
	if e.LastActiveAgo >= 0 {
		content["last_active_ago"] = e.LastActiveAgo
	}
	if e.StatusMsg != "" {
		content["status_msg"] = e.StatusMsg
	}
	return content
}

// PresenceView is the presence state the presence stream reads.
type PresenceView interface {
	PresencePos() int64
	// PresenceBetween returns the users whose presence changed last in
	// (after, upTo].
	PresenceBetween(after, upTo int64) []PresenceEntry
}

// PresenceTracker hears when a sync connection starts and ends, with its
// set_presence: an open sync keeps its user online. SyncStarted reports
// whether it counted the connection (set_presence "offline" does not);
// only a counted one is ended.
type PresenceTracker interface {
	SyncStarted(user id.UserID, setPresence string) bool
	SyncEnded(user id.UserID)
}

// SetPresenceTracker makes syncs count as presence activity; call it
// while wiring.
func (s *Service) SetPresenceTracker(t PresenceTracker) { s.tracker = t }

// JoinedRoomsLister lists a user's joined rooms.
type JoinedRoomsLister interface {
	JoinedRooms(ctx context.Context, user id.UserID) ([]id.RoomID, error)
}

// PresenceSource is the m.presence stream: the presence of the user and
// of the users who share a joined room with them (spec: presence is
// visible to users who share a room), when it changed in the range.
type PresenceSource struct {
	View  PresenceView
	Rooms JoinedRoomsLister
}

var _ StreamSource = PresenceSource{}

// Stream implements StreamSource.
func (PresenceSource) Stream() Stream { return StreamPresence }

// CurrentPos implements StreamSource.
func (s PresenceSource) CurrentPos(context.Context) (int64, error) { return s.View.PresencePos(), nil }

// Fill implements StreamSource.
func (s PresenceSource) Fill(ctx context.Context, q StreamQuery, resp *Response) error {
	since := q.Since
	if q.Initial {
		since = 0
	}
	pf := q.Filter.PresenceFilter()
	for _, e := range s.View.PresenceBetween(since, q.Pos) {
		if !pf.Matches("m.presence", e.User) {
			continue
		}
		if e.User != q.User {
			theirs, err := s.Rooms.JoinedRooms(ctx, e.User)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(theirs, func(r id.RoomID) bool { return slices.Contains(q.Joined, r) }) {
				continue
			}
		}
		raw, err := json.Marshal(map[string]any{"type": "m.presence", "sender": e.User, "content": e.Content()})
		if err != nil {
			return err
		}
		resp.Presence.Events = append(resp.Presence.Events, raw)
	}
	return nil
}
