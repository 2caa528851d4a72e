// Package presence tracks users' presence (spec client-server-api
// "Presence"): online while they use the server, unavailable after they
// have been idle, offline once their last sync connection is gone and a
// timeout passed, or whatever they set themselves; with last_active_ago,
// currently_active and status_msg. Activity is any authenticated request,
// sync or WebSocket frame, recorded in memory (no write per request).
//
// State lives in memory on the node: presence is a live signal, not
// history. Positions start at the node's start time in milliseconds so a
// sync token of an earlier run is never ahead. A cluster shares presence
// over the bus later; the Notifier is the seam.
//
// It is a domain package: no edge, no storage, no driver.
package presence

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// Presence values.
const (
	Online      = "online"
	Unavailable = "unavailable"
	Offline     = "offline"
)

// Config tunes presence.
type Config struct {
	// Enabled: when false nobody's presence is tracked or shown.
	Enabled bool
	// IdleTimeout turns an online user unavailable after no activity.
	IdleTimeout time.Duration
	// OfflineTimeout turns a user offline this long after their last sync
	// connection ended (and their last activity).
	OfflineTimeout time.Duration
}

// Notifier is told of every change so that waiting syncs wake.
type Notifier interface {
	Notify(c syncer.Change)
}

// Rooms lists a user's joined rooms: presence is visible only to users
// who share a room.
type Rooms interface {
	JoinedRooms(ctx context.Context, user id.UserID) ([]id.RoomID, error)
}

// Service holds every user's presence.
type Service struct {
	cfg      Config
	notifier Notifier
	rooms    Rooms
	logger   *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	pos   int64
	users map[id.UserID]*userState
	// remoteUsers is the presence other servers told us of their users
	// (m.presence EDUs); remote hears our users' changes. See remote.go.
	remoteUsers map[id.UserID]*remoteState
	remote      RemoteSender
	// stopPing ends the periodic re-send (remote.go); the durations are
	// RemoteTimeout and PingInterval, shorter in tests.
	stopPing                    chan struct{}
	remoteTimeout, pingInterval time.Duration
	// earlyRemote counts the remote users kept while in no room here
	// (remote.go, EarlyRemoteTTL, shorter in tests).
	earlyRemote    int
	earlyRemoteTTL time.Duration
	// closed: the node is shutting down; nothing changes any more.
	closed bool
	// announcing counts announcements under way; Close waits for them.
	announcing sync.WaitGroup
}

// userState is one user's presence as this node knows it.
type userState struct {
	// set is the presence the user chose (PUT status or set_presence);
	// "" follows activity alone.
	set        string
	statusMsg  string
	lastActive time.Time
	syncs      int       // sync connections open now
	syncEnded  time.Time // when the last one ended
	// published is the state last announced, changed its position.
	published string
	active    bool
	changed   int64
	timer     *time.Timer
	// timerAt is when timer fires. A timer that fires before the next
	// change is due is kept: it re-reads the state and arms the next
	// one, so a sync that only moves the due time later (a user online
	// who syncs again) stops and starts no timer (issue #9).
	timerAt time.Time
}

// New returns the service.
func New(cfg Config, notifier Notifier, rooms Rooms, logger *slog.Logger) *Service {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.OfflineTimeout <= 0 {
		cfg.OfflineTimeout = 30 * time.Second
	}
	return &Service{cfg: cfg, notifier: notifier, rooms: rooms, logger: logger, now: time.Now,
		pos: time.Now().UnixMilli(), users: map[id.UserID]*userState{},
		remoteUsers: map[id.UserID]*remoteState{}, remoteTimeout: RemoteTimeout, pingInterval: PingInterval,
		earlyRemoteTTL: EarlyRemoteTTL}
}

// Enabled reports whether presence is on.
func (s *Service) Enabled() bool { return s.cfg.Enabled }

// Touch records activity of user: a request, a sync, a WebSocket frame.
// It costs a map update unless the user's presence changes.
func (s *Service) Touch(user id.UserID) {
	if !s.cfg.Enabled {
		return
	}
	s.mu.Lock()
	now := s.now()
	u := s.user(user)
	u.lastActive = now
	// An armed timer re-reads lastActive when it fires: no re-arming per
	// request.
	s.recheckLocked(user, u, now, false, u.timer == nil)
}

// SyncStarted records an open sync connection (a long-poll or a WebSocket
// stream); setPresence is the request's set_presence ("" = online). A
// sync with "offline" is not counted: the spec's client syncs without
// being marked online; it reports false then.
func (s *Service) SyncStarted(user id.UserID, setPresence string) bool {
	if !s.cfg.Enabled || setPresence == Offline {
		return false
	}
	s.mu.Lock()
	now := s.now()
	u := s.user(user)
	u.syncs++
	switch setPresence {
	case Unavailable:
		u.set = Unavailable
	default:
		u.lastActive = now
		if u.set == Offline || u.set == Unavailable {
			u.set = ""
		}
	}
	s.recheckLocked(user, u, now, false, true)
	return true
}

// SyncEnded records the end of a sync connection.
func (s *Service) SyncEnded(user id.UserID) {
	if !s.cfg.Enabled {
		return
	}
	s.mu.Lock()
	now := s.now()
	u := s.user(user)
	if u.syncs > 0 {
		u.syncs--
	}
	u.syncEnded = now
	s.recheckLocked(user, u, now, false, true)
}

// SetPresence handles PUT /presence/{userId}/status.
func (s *Service) SetPresence(user id.UserID, presence string, statusMsg *string) error {
	switch presence {
	case Online, Unavailable, Offline:
	default:
		return mxerr.InvalidParam.Msg("presence must be online, unavailable or offline")
	}
	if !s.cfg.Enabled {
		return nil
	}
	s.mu.Lock()
	now := s.now()
	u := s.user(user)
	u.set = presence
	if presence == Online {
		u.set = ""
		u.lastActive = now
	}
	if statusMsg != nil {
		u.statusMsg = *statusMsg
	}
	// A new status message is a change even when the presence is not.
	s.recheckLocked(user, u, now, statusMsg != nil, true)
	return nil
}

func (s *Service) user(user id.UserID) *userState {
	u := s.users[user]
	if u == nil {
		u = &userState{published: Offline}
		s.users[user] = u
	}
	return u
}

// derived is the user's presence at now: what they set, else what their
// activity says.
func (s *Service) derived(u *userState, now time.Time) (presence string, active bool) {
	idle := now.Sub(u.lastActive)
	gone := u.syncs == 0 && now.Sub(u.syncEnded) >= s.cfg.OfflineTimeout && idle >= s.cfg.OfflineTimeout
	switch {
	case u.set == Offline:
		return Offline, false
	case gone:
		return Offline, false
	case u.set == Unavailable || idle >= s.cfg.IdleTimeout:
		return Unavailable, false
	}
	return Online, idle < time.Minute
}

// recheckLocked publishes the user's presence at now when it changed (or
// when force) and, when rearm or on a change, makes sure a timer fires by
// the next change time alone can make; it releases s.mu. The caller's
// one reading of the clock serves the whole operation: a sync's presence
// bookkeeping read it five times (issue #9).
func (s *Service) recheckLocked(user id.UserID, u *userState, now time.Time, force, rearm bool) {
	if s.closed {
		s.mu.Unlock()
		return
	}
	p, active := s.derived(u, now)
	changed := force || p != u.published || active != u.active
	if changed {
		u.published, u.active = p, active
		s.changeLocked(user, u)
	}
	if changed || rearm {
		s.armLocked(user, u, now, changed)
	}
	pos := u.changed
	var entry syncer.PresenceEntry
	if changed {
		s.announcing.Add(1)
		entry = s.entryLocked(user, u)
	}
	remote := s.remote
	s.mu.Unlock()
	if changed {
		s.announce(user, pos)
		if remote != nil {
			remote.SendPresence(context.Background(), entry)
		}
		s.announcing.Done()
	}
}

// armLocked arms the user's timer for the next change time alone can
// make. Unless replace (the presence changed), an armed timer that fires
// no later than that is kept: firing early costs a recheck, and a sync
// that only moved the change later then arms no timer. s.mu is held.
func (s *Service) armLocked(user id.UserID, u *userState, now time.Time, replace bool) {
	next := s.nextCheck(u, now)
	if !replace && u.timer != nil && (next == 0 || !u.timerAt.After(now.Add(next))) {
		return
	}
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	if next == 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(next, func() {
		s.mu.Lock()
		if u.timer == t { // not stopped and replaced meanwhile
			u.timer = nil
		}
		s.recheckLocked(user, u, s.now(), false, true)
	})
	u.timer, u.timerAt = t, now.Add(next)
}

// Close stops every timer: after it presence no longer changes (the node
// is shutting down and its database is about to close).
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	for _, u := range s.users {
		if u.timer != nil {
			u.timer.Stop()
			u.timer = nil
		}
	}
	for _, r := range s.remoteUsers {
		if r.timer != nil {
			r.timer.Stop()
			r.timer = nil
		}
		if r.expiry != nil {
			r.expiry.Stop()
		}
	}
	if s.stopPing != nil {
		close(s.stopPing)
		s.stopPing = nil
	}
	s.mu.Unlock()
	s.announcing.Wait()
}

// changeLocked gives the user's presence the next position; s.mu is held.
func (s *Service) changeLocked(_ id.UserID, u *userState) {
	s.pos++
	u.changed = s.pos
}

// nextCheck is how long after now time alone changes the user's
// presence (0: never).
func (s *Service) nextCheck(u *userState, now time.Time) time.Duration {
	if u.published == Offline {
		return 0
	}
	var first time.Time // zero: none yet
	consider := func(at time.Time) {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if u.active {
		consider(u.lastActive.Add(time.Minute))
	}
	if u.published == Online {
		consider(u.lastActive.Add(s.cfg.IdleTimeout))
	}
	if u.syncs == 0 {
		consider(latest(u.syncEnded, u.lastActive).Add(s.cfg.OfflineTimeout))
	}
	if first.IsZero() {
		return 0
	}
	return max(first.Sub(now), time.Millisecond)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// announce wakes the syncs of everyone who shares a room with user, and
// user's own.
func (s *Service) announce(user id.UserID, pos int64) {
	rooms, err := s.rooms.JoinedRooms(context.Background(), user)
	if err != nil {
		s.logger.Error("presence: joined rooms", "user_id", string(user), "error", err.Error())
	}
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Users: []id.UserID{user}})
	for _, r := range rooms {
		s.notifier.Notify(syncer.Change{Stream: syncer.StreamPresence, Pos: pos, Room: r})
	}
}
