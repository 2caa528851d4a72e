package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
)

// MakeLeave answers GET /_matrix/federation/v1/make_leave/{roomId}/{userId}:
// a leave template for a user of origin who is joined, invited or
// knocking (rejecting an invite, retracting a knock).
func (s *Service) MakeLeave(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID) (*Template, error) {
	h, err := s.residentHeadFor(ctx, origin, room, user)
	if err != nil {
		return nil, err
	}
	switch h.State.Membership(string(user)) {
	case "join", "invite", "knock":
	default:
		return nil, mxerr.Forbidden.Msg("the user is not in the room")
	}
	return s.makeTemplate(h, user, map[string]any{"membership": "leave"})
}

// SendLeave answers PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}:
// the leave is checked and persisted; the outbound sender relays it.
func (s *Service) SendLeave(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte) error {
	if !s.fed.set {
		return errNoFederation
	}
	h, err := s.residentHead(ctx, origin, room)
	if err != nil {
		return err
	}
	ev, err := parseDirectPDU(h.Version, raw, room, eventID, origin, "leave")
	if err != nil {
		return err
	}
	if err := s.verifyPDU(ctx, ev); err != nil {
		return err
	}
	return s.accept(ctx, origin, ev)
}

// leaveRemote rejects an invite or retracts a knock in a room this server
// is not in (server-server API, "Leaving Rooms (Rejecting Invites)"):
// make_leave/send_leave through the inviting server, the room's servers
// we know of, and the room id's server. When none of them answers, the
// invite is rejected locally only, so that the user is not stuck with it.
func (s *Service) leaveRemote(ctx context.Context, user id.UserID, room id.RoomID, reason string) error {
	var prior *event.Event
	var stripped []json.RawMessage
	if s.fed.Invites != nil {
		var err error
		if prior, stripped, err = s.fed.Invites.RemoteMembership(ctx, room, user); err != nil {
			return err
		}
	}
	if prior == nil || (prior.Membership() != "invite" && prior.Membership() != "knock") {
		return mxerr.Forbidden.Msg("the user is not in the room")
	}
	var candidates []id.ServerName
	add := func(srv id.ServerName) {
		if srv != "" && srv != s.cfg.ServerName && !containsServer(candidates, srv) {
			candidates = append(candidates, srv)
		}
	}
	add(prior.Sender().Server())
	for _, srv := range strippedSenders(stripped) {
		add(srv)
	}
	add(room.Server())
	var lastErr error
	for _, srv := range candidates {
		ev, err := s.leaveThrough(ctx, srv, user, room, reason)
		if err == nil {
			return s.fed.Invites.StoreRemoteMembership(ctx, ev, nil)
		}
		lastErr = err
		s.logger.InfoContext(ctx, "remote leave failed", slog.String("room_id", string(room)),
			slog.String("user_id", string(user)), slog.String("server", string(srv)), slog.String("error", err.Error()))
	}
	s.logger.WarnContext(ctx, "rejecting an invite locally only", slog.String("room_id", string(room)),
		slog.String("user_id", string(user)), slog.Any("error", lastErr))
	ev, err := s.localLeave(prior, reason)
	if err != nil {
		return err
	}
	return s.fed.Invites.StoreRemoteMembership(ctx, ev, nil)
}

// leaveThrough is the leave handshake with one resident server.
func (s *Service) leaveThrough(ctx context.Context, srv id.ServerName, user id.UserID, room id.RoomID, reason string) (*event.Event, error) {
	tpl, err := s.fed.Remote.MakeMembership(ctx, srv, "leave", room, user, supportedVersions())
	if err != nil {
		return nil, err
	}
	ev, err := s.fillTemplate(ctx, tpl, room, user, "leave", reason)
	if err != nil {
		return nil, err
	}
	if err := s.fed.Remote.SendLeave(ctx, srv, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// localLeave builds a leave that follows prior (an invite or knock) and
// that no other server will see: how an invite is rejected when its
// room cannot be reached.
func (s *Service) localLeave(prior *event.Event, reason string) (*event.Event, error) {
	user := id.UserID(*prior.StateKey())
	return event.Build(prior.Version(), event.Proto{
		Sender: user, Type: auth.TypeMember, StateKey: prior.StateKey(),
		Content: mustJSON(memberContent("leave", reason, nil)), RoomID: prior.RoomID(),
		PrevEvents: []event.Ref{prior.Ref()}, AuthEvents: []event.Ref{prior.Ref()},
		Depth: prior.Depth() + 1, OriginServerTS: s.nowMS(),
	}, s.cfg.ServerName, s.cfg.Key)
}

// strippedSenders are the servers of the senders of stripped state
// events, the create event's first: servers that were in the room.
func strippedSenders(stripped []json.RawMessage) []id.ServerName {
	var out []id.ServerName
	for _, raw := range stripped {
		obj, err := canonicaljson.Parse(raw, false)
		if err != nil {
			continue
		}
		sender, _ := obj.GetString("sender")
		u, err := id.ParseUserID(sender)
		if err != nil {
			continue
		}
		if typ, _ := obj.GetString("type"); typ == auth.TypeCreate {
			out = append([]id.ServerName{u.Server()}, out...)
		} else {
			out = append(out, u.Server())
		}
	}
	return out
}

func containsServer(list []id.ServerName, srv id.ServerName) bool {
	for _, s := range list {
		if s == srv {
			return true
		}
	}
	return false
}

// leaveIsRemote reports whether user's leave of room must go over
// federation: federation is on, the user is ours and we are not in the
// room (or do not know it).
func (s *Service) leaveIsRemote(ctx context.Context, user id.UserID, room id.RoomID) (bool, error) {
	if !s.fed.set || user.Server() != s.cfg.ServerName {
		return false, nil
	}
	h, err := s.store.Head(ctx, room)
	if errors.Is(err, ErrRoomNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !serverInRoom(h.State, s.cfg.ServerName), nil
}
