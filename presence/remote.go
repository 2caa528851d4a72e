package presence

import (
	"context"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// RemoteSender hands local users' presence changes to the servers that
// share a room with them (the federation queue implements it: m.presence,
// server-server API "Presence"). It must not block for long.
type RemoteSender interface {
	SendPresence(ctx context.Context, e syncer.PresenceEntry)
}

// SetRemoteSender makes local presence changes reach other servers; call
// it while wiring.
func (s *Service) SetRemoteSender(r RemoteSender) {
	s.mu.Lock()
	s.remote = r
	s.mu.Unlock()
}

// remoteState is a remote user's presence as their server last told us.
type remoteState struct {
	entry    syncer.PresenceEntry
	received time.Time
	changed  int64
}

// SetRemotePresence records the presence of a remote user that their
// server pushed (m.presence). It is kept only for users joined to a room
// here (no one else could see it) and shown, like a local user's, to the
// local users who share a room with them. It is not sent on.
func (s *Service) SetRemotePresence(ctx context.Context, e syncer.PresenceEntry) error {
	switch e.Presence {
	case Online, Unavailable, Offline:
	default:
		return mxerr.InvalidParam.Msg("presence must be online, unavailable or offline")
	}
	if !s.cfg.Enabled {
		return nil
	}
	rooms, err := s.rooms.JoinedRooms(ctx, e.User)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if len(rooms) == 0 || s.closed {
		delete(s.remoteUsers, e.User)
		s.mu.Unlock()
		return nil
	}
	r := s.remoteUsers[e.User]
	if r == nil {
		r = &remoteState{}
		s.remoteUsers[e.User] = r
	}
	r.entry, r.received = e, s.now()
	s.pos++
	r.changed = s.pos
	pos := r.changed
	s.announcing.Add(1)
	s.mu.Unlock()
	defer s.announcing.Done()
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Users: []id.UserID{e.User}})
	for _, room := range rooms {
		s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Room: room})
	}
	return nil
}

// remoteEntryLocked is the client's view of a remote user's presence:
// last_active_ago counts on from when it arrived. s.mu is held.
func (s *Service) remoteEntryLocked(r *remoteState) syncer.PresenceEntry {
	e := r.entry
	if e.LastActiveAgo >= 0 {
		e.LastActiveAgo += max(s.now().Sub(r.received).Milliseconds(), 0)
	}
	return e
}

// CurrentPresence returns the presence of those of users this node knows
// who are not offline: what a server that just started sharing a room
// with them is sent (offline is what it assumes of everyone else).
func (s *Service) CurrentPresence(users []id.UserID) []syncer.PresenceEntry {
	if !s.cfg.Enabled {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []syncer.PresenceEntry
	for _, user := range users {
		if u := s.users[user]; u != nil && u.published != Offline {
			out = append(out, s.entryLocked(user, u))
		}
	}
	return out
}
