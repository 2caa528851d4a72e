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

// Federation keeps presence alive both ways: a remote user whose server
// said nothing for RemoteTimeout is shown offline (their server may be
// gone), and every PingInterval this node re-sends the presence of its
// users who are not offline, so that other servers do not time them out.
const (
	RemoteTimeout = 30 * time.Minute
	PingInterval  = 25 * time.Minute
)

// SetRemoteSender makes local presence changes reach other servers, and
// starts the periodic re-send; call it while wiring.
func (s *Service) SetRemoteSender(r RemoteSender) {
	s.mu.Lock()
	s.remote = r
	if s.stopPing == nil && s.cfg.Enabled {
		s.stopPing = make(chan struct{})
		go s.pingLoop(s.stopPing)
	}
	s.mu.Unlock()
}

// pingLoop re-sends the presence of local users who are not offline every
// ping interval, until stop closes.
func (s *Service) pingLoop(stop chan struct{}) {
	t := time.NewTicker(s.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		remote := s.remote
		var entries []syncer.PresenceEntry
		for user, u := range s.users {
			if u.published != Offline {
				entries = append(entries, s.entryLocked(user, u))
			}
		}
		s.mu.Unlock()
		for _, e := range entries {
			remote.SendPresence(context.Background(), e)
		}
	}
}

// remoteState is a remote user's presence as their server last told us.
type remoteState struct {
	entry    syncer.PresenceEntry
	received time.Time
	changed  int64
	timer    *time.Timer // the RemoteTimeout of a presence other than offline
	// early: the user was in no room here when it arrived (see
	// EarlyRemoteTTL); expiry drops it then unless they joined meanwhile.
	early  bool
	expiry *time.Timer
}

// A remote user's presence may arrive just before this server holds the
// membership that makes them someone to show it to: when a local user
// joins over federation, the remote user's server hears of the join from
// the room's other servers and may push their presence before this
// server has stored the join's answer. Such presence is kept for
// EarlyRemoteTTL (at most MaxEarlyRemote users at once, the rest
// dropped as before) and dropped then if the user is still in no room
// here. Clients see presence only of users who share a room with them
// (syncer.RoomSharers), so keeping it shows it to no one else.
const (
	EarlyRemoteTTL = 2 * time.Minute
	MaxEarlyRemote = 10_000
)

// SetRemotePresence records the presence of a remote user that their
// server pushed (m.presence). It is kept for users joined to a room here
// (and, briefly, for those about to be: EarlyRemoteTTL) and shown, like a
// local user's, to the local users who share a room with them. It is not
// sent on.
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
	r := s.remoteUsers[e.User]
	early := len(rooms) == 0
	if s.closed || early && (e.Presence == Offline || r == nil && s.earlyRemote >= MaxEarlyRemote) {
		s.forgetRemoteLocked(e.User)
		s.mu.Unlock()
		return nil
	}
	if r == nil {
		r = &remoteState{}
		s.remoteUsers[e.User] = r
	}
	s.markEarlyLocked(e.User, r, early)
	received := s.now()
	r.entry, r.received = e, received
	s.pos++
	r.changed = s.pos
	pos := r.changed
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if e.Presence != Offline {
		r.timer = time.AfterFunc(s.remoteTimeout, func() { s.remoteTimedOut(e.User, received) })
	}
	s.announcing.Add(1)
	s.mu.Unlock()
	defer s.announcing.Done()
	s.notifyRemote(e.User, rooms, pos)
	return nil
}

// markEarlyLocked records whether r arrived while its user was in no room
// here, and starts the expiry of early presence; s.mu is held.
func (s *Service) markEarlyLocked(user id.UserID, r *remoteState, early bool) {
	switch {
	case early && !r.early:
		s.earlyRemote++
		r.early = true
		r.expiry = time.AfterFunc(s.earlyRemoteTTL, func() { s.earlyExpired(user, r) })
	case !early && r.early:
		s.earlyRemote--
		r.early = false
		r.expiry.Stop()
		r.expiry = nil
	}
}

// earlyExpired drops the early presence r of user unless they are in a
// room here by now.
func (s *Service) earlyExpired(user id.UserID, r *remoteState) {
	rooms, err := s.rooms.JoinedRooms(context.Background(), user)
	if err != nil {
		s.logger.Error("presence: joined rooms", "user_id", string(user), "error", err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.remoteUsers[user] != r || !r.early {
		return
	}
	if len(rooms) > 0 {
		s.markEarlyLocked(user, r, false)
		return
	}
	s.forgetRemoteLocked(user)
}

// forgetRemoteLocked drops what this server knows of a remote user's
// presence; s.mu is held.
func (s *Service) forgetRemoteLocked(user id.UserID) {
	r := s.remoteUsers[user]
	if r == nil {
		return
	}
	s.markEarlyLocked(user, r, false)
	if r.timer != nil {
		r.timer.Stop()
	}
	delete(s.remoteUsers, user)
}

// remoteTimedOut shows a remote user offline when their server said
// nothing more since received.
func (s *Service) remoteTimedOut(user id.UserID, received time.Time) {
	s.mu.Lock()
	r := s.remoteUsers[user]
	if s.closed || r == nil || !r.received.Equal(received) {
		s.mu.Unlock()
		return
	}
	r.entry.Presence, r.entry.CurrentlyActive = Offline, false
	r.timer = nil
	s.pos++
	r.changed = s.pos
	pos := r.changed
	s.announcing.Add(1)
	s.mu.Unlock()
	defer s.announcing.Done()
	rooms, err := s.rooms.JoinedRooms(context.Background(), user)
	if err != nil {
		s.logger.Error("presence: joined rooms", "user_id", string(user), "error", err.Error())
	}
	s.notifyRemote(user, rooms, pos)
}

func (s *Service) notifyRemote(user id.UserID, rooms []id.RoomID, pos int64) {
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Users: []id.UserID{user}})
	for _, room := range rooms {
		s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Room: room})
	}
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
