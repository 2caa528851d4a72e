package rooms

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// MakeKnock answers GET /_matrix/federation/v1/make_knock/{roomId}/{userId}
// (server-server API, "Knocking upon a room"): a knock template, checked
// against current state (the join rule must allow knocking).
func (s *Service) MakeKnock(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID, versions []roomversion.ID) (*Template, error) {
	h, err := s.residentHeadFor(ctx, origin, room, user)
	if err != nil {
		return nil, err
	}
	if err := versionOffered(h.Version, versions); err != nil {
		return nil, err
	}
	if !h.Version.Knocking {
		return nil, mxerr.Forbidden.Msgf("room version %s does not support knocking", h.Version.ID)
	}
	switch h.State.Membership(string(user)) {
	case "ban":
		return nil, mxerr.Forbidden.Msg("the user is banned from the room")
	case "join":
		return nil, mxerr.Forbidden.Msg("the user is already in the room")
	}
	return s.makeTemplate(h, user, map[string]any{"membership": "knock"})
}

// SendKnock answers PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}:
// the knock is checked and persisted, and the knocker's server gets the
// stripped state its user may see (knock_room_state).
func (s *Service) SendKnock(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte) ([]StrippedEvent, error) {
	if !s.fed.set {
		return nil, errNoFederation
	}
	h, err := s.residentHead(ctx, origin, room)
	if err != nil {
		return nil, err
	}
	if !h.Version.Knocking {
		return nil, mxerr.Forbidden.Msgf("room version %s does not support knocking", h.Version.ID)
	}
	ev, err := parseDirectPDU(h.Version, raw, room, eventID, origin, "knock")
	if err != nil {
		return nil, err
	}
	if err := s.verifyPDU(ctx, ev); err != nil {
		return nil, err
	}
	if err := s.accept(ctx, origin, ev); err != nil {
		return nil, err
	}
	return s.StrippedState(ctx, room, ev.Sender())
}

// KnockVia is Knock for a room that may live on other servers: when this
// server is not in the room, the knock goes through one of via or the
// room id's server, and is kept with the stripped state the resident
// returned so that /sync shows it.
func (s *Service) KnockVia(ctx context.Context, user id.UserID, room id.RoomID, via []id.ServerName, reason string) (id.RoomID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil && !errors.Is(err, ErrRoomNotFound) {
		return "", err
	}
	if !s.fed.set || user.Server() != s.cfg.ServerName || (err == nil && serverInRoom(h.State, s.cfg.ServerName)) {
		return s.Knock(ctx, user, room, reason)
	}
	var candidates []id.ServerName
	add := func(srv id.ServerName) {
		if srv != "" && srv != s.cfg.ServerName && !slices.Contains(candidates, srv) {
			candidates = append(candidates, srv)
		}
	}
	for _, v := range via {
		add(v)
	}
	add(room.Server())
	if h != nil {
		for _, srv := range serversInRoom(h.State) {
			add(srv)
		}
	}
	if len(candidates) == 0 {
		return "", mxerr.NotFound.Msg("no known server can help knock on this room; give one with server_name or via")
	}
	var lastErr error
	for _, srv := range candidates {
		if lastErr = s.knockThrough(ctx, srv, user, room, reason); lastErr == nil {
			return room, nil
		}
		s.logger.InfoContext(ctx, "remote knock failed", slog.String("room_id", string(room)),
			slog.String("user_id", string(user)), slog.String("server", string(srv)), slog.String("error", lastErr.Error()))
	}
	return "", lastErr
}

// knockVersions are the room versions with knocking.
func knockVersions() []roomversion.ID {
	var out []roomversion.ID
	for _, v := range roomversion.All() {
		if v.Knocking {
			out = append(out, v.ID)
		}
	}
	return out
}

// knockThrough is the knock handshake with one resident server.
func (s *Service) knockThrough(ctx context.Context, srv id.ServerName, user id.UserID, room id.RoomID, reason string) error {
	tpl, err := s.fed.Remote.MakeMembership(ctx, srv, "knock", room, user, knockVersions())
	if err != nil {
		return err
	}
	ev, err := s.fillTemplate(ctx, tpl, room, user, "knock", reason)
	if err != nil {
		return err
	}
	stripped, err := s.fed.Remote.SendKnock(ctx, srv, ev)
	if err != nil {
		return err
	}
	if s.fed.Invites == nil {
		return errNoFederation
	}
	return s.fed.Invites.StoreRemoteMembership(ctx, ev, stripped)
}
