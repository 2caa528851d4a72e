package presence

import (
	"context"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// Status returns user's presence as viewer may see it (GET
// /presence/{userId}/status): viewer must be user or share a room with
// them (M_FORBIDDEN otherwise, as the spec allows). A user this node has
// not seen is offline.
func (s *Service) Status(ctx context.Context, viewer, user id.UserID) (syncer.PresenceEntry, error) {
	if viewer != user {
		ok, err := s.shareRoom(ctx, viewer, user)
		if err != nil {
			return syncer.PresenceEntry{}, err
		}
		if !ok {
			return syncer.PresenceEntry{}, mxerr.Forbidden.Msg("You cannot see this user's presence")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[user]
	if r := s.remoteUsers[user]; r != nil && u == nil && s.cfg.Enabled {
		return s.remoteEntryLocked(r), nil
	}
	if u == nil || !s.cfg.Enabled {
		return syncer.PresenceEntry{User: user, Presence: Offline, LastActiveAgo: -1}, nil
	}
	return s.entryLocked(user, u), nil
}

func (s *Service) shareRoom(ctx context.Context, a, b id.UserID) (bool, error) {
	ra, err := s.rooms.JoinedRooms(ctx, a)
	if err != nil {
		return false, err
	}
	rb, err := s.rooms.JoinedRooms(ctx, b)
	if err != nil {
		return false, err
	}
	for _, r := range ra {
		if slices.Contains(rb, r) {
			return true, nil
		}
	}
	return false, nil
}

// entryLocked is the client's view of u; s.mu is held.
func (s *Service) entryLocked(user id.UserID, u *userState) syncer.PresenceEntry {
	e := syncer.PresenceEntry{User: user, Presence: u.published, CurrentlyActive: u.active, StatusMsg: u.statusMsg,
		LastActiveAgo: -1}
	if !u.lastActive.IsZero() {
		e.LastActiveAgo = max(s.now().Sub(u.lastActive).Milliseconds(), 0)
	}
	return e
}

// PresencePos implements syncer.PresenceView.
func (s *Service) PresencePos() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// PresenceBetween implements syncer.PresenceView: the users whose presence
// changed last in (after, upTo].
func (s *Service) PresenceBetween(after, upTo int64) []syncer.PresenceEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []syncer.PresenceEntry
	for user, u := range s.users {
		if u.changed > after && u.changed <= upTo {
			out = append(out, s.entryLocked(user, u))
		}
	}
	for _, r := range s.remoteUsers {
		if r.changed > after && r.changed <= upTo {
			out = append(out, s.remoteEntryLocked(r))
		}
	}
	slices.SortFunc(out, func(a, b syncer.PresenceEntry) int {
		return compareStrings(string(a.User), string(b.User))
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
