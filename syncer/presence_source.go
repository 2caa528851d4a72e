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

// RoomSharers answers, in one read, which of some users are joined to at
// least one of some rooms.
type RoomSharers interface {
	JoinedAmong(ctx context.Context, rooms []id.RoomID, users []id.UserID) ([]id.UserID, error)
}

// PresenceSource is the m.presence stream: the presence of the user and
// of the users who share a joined room with them (spec: presence is
// visible to users who share a room), when it changed in the range.
type PresenceSource struct {
	View PresenceView
	// Sharing, when set, tells which of the changed users share a room
	// with the syncing user in one query; otherwise Rooms lists each
	// changed user's rooms (one query per user: in a 500-member room
	// whose members all sync, 500 queries per sync).
	Sharing RoomSharers
	Rooms   JoinedRoomsLister
}

var _ StreamSource = PresenceSource{}

// Stream implements StreamSource.
func (PresenceSource) Stream() Stream { return StreamPresence }

// CurrentPos implements StreamSource.
func (s PresenceSource) CurrentPos(context.Context) (int64, error) { return s.View.PresencePos(), nil }

// Fill implements StreamSource.
func (s PresenceSource) Fill(ctx context.Context, q StreamQuery, resp *Response) error {
	pf := q.Filter.PresenceFilter()
	if pf != nil && pf.Types != nil && len(pf.Types) == 0 {
		return nil // "types": [] — the client wants no presence at all
	}
	since := q.Since
	if q.Initial {
		since = 0
	}
	var wanted []PresenceEntry
	var others []id.UserID
	for _, e := range s.View.PresenceBetween(since, q.Pos) {
		if !pf.Matches("m.presence", e.User) {
			continue
		}
		wanted = append(wanted, e)
		if e.User != q.User {
			others = append(others, e.User)
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	shared, err := s.sharing(ctx, q.Joined, others)
	if err != nil {
		return err
	}
	for _, e := range wanted {
		if e.User != q.User && !shared[e.User] {
			continue
		}
		raw, err := json.Marshal(map[string]any{"type": "m.presence", "sender": e.User, "content": e.Content()})
		if err != nil {
			return err
		}
		resp.Presence.Events = append(resp.Presence.Events, raw)
	}
	return nil
}

// sharing returns those of users joined to one of rooms.
func (s PresenceSource) sharing(ctx context.Context, rooms []id.RoomID, users []id.UserID) (map[id.UserID]bool, error) {
	out := make(map[id.UserID]bool, len(users))
	if len(users) == 0 || len(rooms) == 0 {
		return out, nil
	}
	if s.Sharing != nil {
		among, err := s.Sharing.JoinedAmong(ctx, rooms, users)
		if err != nil {
			return nil, err
		}
		for _, u := range among {
			out[u] = true
		}
		return out, nil
	}
	for _, u := range users {
		theirs, err := s.Rooms.JoinedRooms(ctx, u)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(theirs, func(r id.RoomID) bool { return slices.Contains(rooms, r) }) {
			out[u] = true
		}
	}
	return out, nil
}
