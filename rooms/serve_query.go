package rooms

import (
	"context"
	"errors"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// RemoteDirectory reads other servers' directories (server-server API,
// "Published Room Directory" and "Querying for information"): their
// published rooms over GET/POST /_matrix/federation/v1/publicRooms and
// their aliases over GET /query/directory. Package federation implements
// it.
type RemoteDirectory interface {
	PublicRooms(ctx context.Context, server id.ServerName, req PublicRoomsRequest) (*PublicRooms, error)
	// QueryDirectory resolves an alias of the alias's server;
	// ErrAliasNotFound when it has no such alias.
	QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error)
}

// SetRemoteDirectory lets /publicRooms?server= and GET /directory/room of
// another server's alias reach other servers; app calls it once, before
// serving. Until then only this server's directory is available.
func (s *Service) SetRemoteDirectory(r RemoteDirectory) { s.remoteDir = r }

// HasRoomTypes reports whether the request filters on room types (a
// filter with an empty list is not the same as no filter).
func (r PublicRoomsRequest) HasRoomTypes() bool { return r.hasTypes }

// PublicRoomsOf is a page of server's room directory (client-server API
// GET/POST /publicRooms with ?server=): ours when server is empty or this
// server, else the other server's, asked over federation.
func (s *Service) PublicRoomsOf(ctx context.Context, server id.ServerName, req PublicRoomsRequest) (*PublicRooms, error) {
	if server == "" || server == s.cfg.ServerName {
		return s.PublicRoomsPage(ctx, req)
	}
	if s.remoteDir == nil {
		return nil, mxerr.InvalidParam.Msg("only this server's directory is available")
	}
	if _, err := id.ParseServerName(string(server)); err != nil {
		return nil, mxerr.InvalidParam.Msg("invalid server name")
	}
	return s.remoteDir.PublicRooms(ctx, server, req)
}

// QueryDirectory resolves one of this server's aliases for another server
// (GET /_matrix/federation/v1/query/directory): the room and the servers
// in it that can help join it, this server first.
func (s *Service) QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error) {
	if alias.Server() != s.cfg.ServerName {
		return "", nil, mxerr.NotFound.Msg("room alias is not on this server")
	}
	room, err := s.store.ResolveAlias(ctx, alias)
	if errors.Is(err, ErrAliasNotFound) {
		return "", nil, mxerr.NotFound.Msg("room alias not found")
	}
	if err != nil {
		return "", nil, err
	}
	servers := []id.ServerName{s.cfg.ServerName}
	if h, err := s.store.Head(ctx, room); err == nil {
		for _, srv := range serversInRoom(h.State) {
			if !slices.Contains(servers, srv) {
				servers = append(servers, srv)
			}
		}
	} else if !errors.Is(err, ErrRoomNotFound) {
		return "", nil, err
	}
	return room, servers, nil
}
