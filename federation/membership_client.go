package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// RemoteMembership implements rooms.RemoteMembership over the federation
// client: the joining, leaving, knocking and inviting server's calls.
type RemoteMembership struct {
	Client *fedclient.Client
}

var _ rooms.RemoteMembership = RemoteMembership{}

// remoteError turns what a remote server answered into the Matrix error
// our client sees: the remote's errcode with its status, except the
// errors that mean we sent something wrong, which are our fault (the
// spec: "the Client-Server API request SHOULD fail with a 5xx error").
func remoteError(server id.ServerName, err error) error {
	var fe *fedclient.Error
	if !errors.As(err, &fe) {
		return mxerr.Unknown.WithStatus(http.StatusBadGateway).Msgf("could not reach %s", server)
	}
	switch {
	// A 401 is about our server's request signature, never the client's
	// token: passed through, clients would take it for a logout.
	case fe.Errcode == "" || fe.Errcode == mxerr.InvalidParam.Code || fe.Errcode == mxerr.MissingParam.Code ||
		fe.Status == http.StatusUnauthorized || fe.Status >= 500:
		return mxerr.Unknown.WithStatus(http.StatusBadGateway).Msgf("%s refused the request: %s %s", server, fe.Errcode, fe.Message)
	}
	e := &mxerr.Error{Code: fe.Errcode, Status: fe.Status, Message: fe.Message}
	if fe.Errcode == mxerr.IncompatibleRoomVersion.Code {
		var body struct {
			RoomVersion string `json:"room_version"`
		}
		if json.Unmarshal(fe.Body, &body) == nil && body.RoomVersion != "" {
			e = e.With("room_version", body.RoomVersion)
		}
	}
	return e
}

// MakeMembership implements rooms.RemoteMembership.
func (m RemoteMembership) MakeMembership(ctx context.Context, server id.ServerName, membership string, room id.RoomID, user id.UserID, versions []roomversion.ID) (*rooms.Template, error) {
	vs := make([]string, len(versions))
	for i, v := range versions {
		vs[i] = string(v)
	}
	resp, err := m.Client.MakeMembership(ctx, server, membership, room, user, vs)
	if err != nil {
		return nil, remoteError(server, err)
	}
	version := roomversion.ID(resp.RoomVersion)
	if version == "" {
		version = "1"
	}
	return &rooms.Template{Version: version, Event: resp.Event}, nil
}

// SendJoin implements rooms.RemoteMembership.
func (m RemoteMembership) SendJoin(ctx context.Context, server id.ServerName, ev *event.Event) (*rooms.RemoteJoin, error) {
	resp, err := m.Client.SendJoin(ctx, server, ev.RoomID(), ev.EventID(), ev.Raw())
	if err != nil {
		return nil, remoteError(server, err)
	}
	out := &rooms.RemoteJoin{State: resp.State, AuthChain: resp.AuthChain, MembersOmitted: resp.MembersOmitted}
	if len(resp.Event) > 0 && string(resp.Event) != "null" {
		out.Event = resp.Event
	}
	for _, s := range resp.ServersInRoom {
		out.ServersInRoom = append(out.ServersInRoom, id.ServerName(s))
	}
	return out, nil
}

// SendLeave implements rooms.RemoteMembership.
func (m RemoteMembership) SendLeave(ctx context.Context, server id.ServerName, ev *event.Event) error {
	if err := m.Client.SendLeave(ctx, server, ev.RoomID(), ev.EventID(), ev.Raw()); err != nil {
		return remoteError(server, err)
	}
	return nil
}

// SendKnock implements rooms.RemoteMembership.
func (m RemoteMembership) SendKnock(ctx context.Context, server id.ServerName, ev *event.Event) ([]json.RawMessage, error) {
	resp, err := m.Client.SendKnock(ctx, server, ev.RoomID(), ev.EventID(), ev.Raw())
	if err != nil {
		return nil, remoteError(server, err)
	}
	return resp.KnockRoomState, nil
}

// SendInvite implements rooms.RemoteMembership.
func (m RemoteMembership) SendInvite(ctx context.Context, server id.ServerName, ev *event.Event, inviteRoomState []json.RawMessage) (json.RawMessage, error) {
	raw, err := m.Client.SendInvite(ctx, server, ev.RoomID(), ev.EventID(), fedclient.InviteRequest{
		RoomVersion: string(ev.Version().ID), Event: ev.Raw(), InviteRoomState: inviteRoomState,
	})
	if err != nil && unknownEndpoint(err) {
		// An older server without v2 (spec: retry with v1 after a 400 or
		// 404, for rooms of version 1 or 2; v1 cannot say the version).
		switch ev.Version().ID {
		case "1", "2":
			raw, err = m.Client.SendInviteV1(ctx, server, ev.RoomID(), ev.EventID(), ev.Raw(), inviteRoomState)
		default:
			return nil, mxerr.UnsupportedRoomVersion.WithStatus(http.StatusBadRequest).
				Msgf("%s does not support invites to rooms of version %s", server, ev.Version().ID)
		}
	}
	if err != nil {
		return nil, remoteError(server, err)
	}
	return raw, nil
}

// unknownEndpoint says whether a remote answer means it lacks the
// endpoint: a 400, 404 or 405 with M_UNRECOGNIZED, or a 404 or 405 that is
// no Matrix error at all. Other errors are the server's refusal (a 404
// M_NOT_FOUND for a user it does not have, a 400 M_INVALID_PARAM).
func unknownEndpoint(err error) bool {
	var fe *fedclient.Error
	if !errors.As(err, &fe) {
		return false
	}
	switch fe.Status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fe.Errcode == "" || fe.Errcode == mxerr.Unrecognized.Code
	case http.StatusBadRequest:
		return fe.Errcode == mxerr.Unrecognized.Code
	}
	return false
}

// QueryDirectory implements rooms.RemoteMembership: GET
// /_matrix/federation/v1/query/directory on the alias's server.
func (m RemoteMembership) QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error) {
	var resp struct {
		RoomID  string   `json:"room_id"`
		Servers []string `json:"servers"`
	}
	path := "/_matrix/federation/v1/query/directory?" + url.Values{"room_alias": {string(alias)}}.Encode()
	if err := m.Client.Do(ctx, alias.Server(), http.MethodGet, path, nil, &resp); err != nil {
		var fe *fedclient.Error
		if errors.As(err, &fe) && fe.Status == http.StatusNotFound {
			return "", nil, mxerr.NotFound.Msg("room alias not found")
		}
		return "", nil, remoteError(alias.Server(), err)
	}
	room, err := id.ParseRoomID(resp.RoomID)
	if err != nil {
		return "", nil, mxerr.Unknown.WithStatus(http.StatusBadGateway).Msgf("%s answered an invalid room id", alias.Server())
	}
	servers := make([]id.ServerName, 0, len(resp.Servers))
	for _, s := range resp.Servers {
		servers = append(servers, id.ServerName(s))
	}
	return room, servers, nil
}
