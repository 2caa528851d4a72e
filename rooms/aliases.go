package rooms

import (
	"context"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
)

// errAliasTaken is PUT /directory/room's 409 (directory.yaml: M_UNKNOWN).
var errAliasTaken = &mxerr.Error{Code: "M_UNKNOWN", Status: http.StatusConflict, Message: "room alias already exists"}

// localAlias parses an alias that this server must own.
func (s *Service) localAlias(raw string) (id.RoomAlias, error) {
	a, err := id.ParseRoomAlias(raw)
	if err != nil {
		return "", mxerr.InvalidParam.Msg("room alias invalid")
	}
	if a.Server() != s.cfg.ServerName {
		return "", mxerr.InvalidParam.Msg("room alias is not on this server")
	}
	return a, nil
}

// CreateAlias points an alias at a room (PUT /directory/room/{roomAlias}).
// The room must exist and the requester be joined to it.
func (s *Service) CreateAlias(ctx context.Context, user id.UserID, rawAlias string, room id.RoomID) error {
	alias, err := s.localAlias(rawAlias)
	if err != nil {
		return err
	}
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	if h.State.Membership(string(user)) != "join" {
		return mxerr.Forbidden.Msg("you are not a member of the room")
	}
	if err := s.store.CreateAlias(ctx, alias, room, user); err != nil {
		if isErr(err, ErrAliasExists) {
			return errAliasTaken.Msgf("room alias %s already exists", alias)
		}
		return err
	}
	return nil
}

// ResolveAlias looks an alias up (GET /directory/room/{roomAlias}).
func (s *Service) ResolveAlias(ctx context.Context, rawAlias string) (id.RoomID, []id.ServerName, error) {
	alias, err := id.ParseRoomAlias(rawAlias)
	if err != nil {
		return "", nil, mxerr.InvalidParam.Msg("room alias invalid")
	}
	if alias.Server() != s.cfg.ServerName && s.remoteDir != nil {
		// Another server's alias: ask it (GET /query/directory).
		return s.remoteDir.QueryDirectory(ctx, alias)
	}
	room, err := s.store.ResolveAlias(ctx, alias)
	if err != nil {
		return "", nil, err
	}
	return room, []id.ServerName{s.cfg.ServerName}, nil
}

// DeleteAlias removes an alias (DELETE /directory/room/{roomAlias}): its
// creator may, and so may whoever may change the room's canonical alias.
func (s *Service) DeleteAlias(ctx context.Context, user id.UserID, rawAlias string) error {
	alias, err := s.localAlias(rawAlias)
	if err != nil {
		return err
	}
	room, err := s.store.ResolveAlias(ctx, alias)
	if err != nil {
		return err
	}
	creator, err := s.store.AliasCreator(ctx, alias)
	if err != nil {
		return err
	}
	if creator != user {
		ok, err := s.mayChangeState(ctx, user, room, "m.room.canonical_alias")
		if err != nil {
			return err
		}
		if !ok {
			return mxerr.Forbidden.Msg("you may not delete this alias")
		}
	}
	_, _, err = s.store.DeleteAlias(ctx, alias)
	return err
}

// mayChangeState reports whether user is joined and has the power to send
// the state event type in room.
func (s *Service) mayChangeState(ctx context.Context, user id.UserID, room id.RoomID, eventType string) (bool, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return false, err
	}
	if h.State.Membership(string(user)) != "join" {
		return false, nil
	}
	pl, err := auth.LoadPowerLevels(h.Version, h.State)
	if err != nil {
		return false, err
	}
	return pl.UserLevel(user) >= pl.EventLevel(eventType, true), nil
}

// RoomAliases lists a room's local aliases (GET /rooms/{roomId}/aliases)
// for members and, in world-readable rooms, anyone.
func (s *Service) RoomAliases(ctx context.Context, user id.UserID, room id.RoomID) ([]id.RoomAlias, error) {
	if _, err := s.readableState(ctx, user, room); err != nil {
		return nil, err
	}
	return s.store.RoomAliases(ctx, room)
}
