package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/rooms"
)

// RemoteReads implements the domain seams that read other servers over
// the federation client: remote profiles, room directories, history
// (backfill), media and E2EE keys. App hands one to each domain service.
type RemoteReads struct {
	Client *fedclient.Client
}

var (
	_ profiles.RemoteProfiles = RemoteReads{}
	_ rooms.RemoteDirectory   = RemoteReads{}
	_ media.RemoteFetcher     = RemoteReads{}
	_ keys.RemoteKeys         = RemoteReads{}
	_ rooms.Backfiller        = RemoteReads{}
)

// remoteMediaWait is how long a remote server may wait for content still
// being uploaded before it answers (timeout_ms of the download).
const remoteMediaWait = 20 * time.Second

// remoteReadError turns another server's answer into what our client sees:
// its Matrix error when it refused the request (4xx with an errcode), else
// 502 — the failure is the other server's, not ours.
func remoteReadError(err error) error {
	var fe *fedclient.Error
	if errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 500 && fe.Errcode != "" {
		return &mxerr.Error{Code: fe.Errcode, Status: fe.Status, Message: fe.Message}
	}
	return errors.Join(mxerr.Unknown.WithStatus(http.StatusBadGateway).Msg("the other server could not answer"), err)
}

// QueryProfile implements profiles.RemoteProfiles.
func (r RemoteReads) QueryProfile(ctx context.Context, user id.UserID) (profiles.Profile, error) {
	p, err := r.Client.QueryProfile(ctx, user, "")
	if fedclient.StatusOf(err) == http.StatusNotFound {
		return nil, profiles.ErrUnknownUser
	}
	if err != nil {
		return nil, err
	}
	return profiles.Profile(p), nil
}

// PublicRooms implements rooms.RemoteDirectory.
func (r RemoteReads) PublicRooms(ctx context.Context, server id.ServerName, req rooms.PublicRoomsRequest) (*rooms.PublicRooms, error) {
	fr := fedclient.PublicRoomsRequest{Limit: req.Limit, Since: req.Since}
	if req.SearchTerm != "" || req.HasRoomTypes() {
		fr.Filter = &fedclient.PublicRoomsFilter{GenericSearchTerm: req.SearchTerm, RoomTypes: req.RoomTypes}
	}
	var out rooms.PublicRooms
	if err := r.Client.PublicRooms(ctx, server, fr, &out); err != nil {
		return nil, remoteReadError(err)
	}
	if out.Chunk == nil {
		out.Chunk = []rooms.PublicRoom{}
	}
	return &out, nil
}

// QueryDirectory implements rooms.RemoteDirectory.
func (r RemoteReads) QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error) {
	res, err := r.Client.QueryDirectory(ctx, alias)
	if fedclient.StatusOf(err) == http.StatusNotFound {
		return "", nil, rooms.ErrAliasNotFound
	}
	if err != nil {
		return "", nil, remoteReadError(err)
	}
	if _, perr := id.ParseRoomID(string(res.RoomID)); perr != nil {
		return "", nil, remoteReadError(fmt.Errorf("%s answered an invalid room id for %s", alias.Server(), alias))
	}
	return res.RoomID, res.Servers, nil
}

// Backfill implements rooms.Backfiller.
func (r RemoteReads) Backfill(ctx context.Context, dest id.ServerName, room id.RoomID, from []id.EventID, limit int) ([]json.RawMessage, error) {
	txn, err := r.Client.Backfill(ctx, dest, room, from, limit)
	if err != nil {
		return nil, err
	}
	return txn.PDUs, nil
}

// FetchMedia implements media.RemoteFetcher.
func (r RemoteReads) FetchMedia(ctx context.Context, mxc media.MXC, maxSize int64) (*media.RemoteContent, error) {
	res, err := r.Client.DownloadMedia(ctx, mxc.Server, string(mxc.MediaID), remoteMediaWait)
	if fedclient.StatusOf(err) == http.StatusNotFound {
		return nil, media.ErrNotFound
	}
	if fedclient.IsErrcode(err, "M_TOO_LARGE") {
		return nil, media.ErrTooLarge
	}
	if err != nil {
		return nil, err
	}
	out := &media.RemoteContent{ContentType: res.ContentType, Body: res.Body}
	if _, params, err := mime.ParseMediaType(res.ContentDisposition); err == nil {
		out.Filename = params["filename"]
	}
	return out, nil
}

// QueryKeys implements keys.RemoteKeys.
func (r RemoteReads) QueryKeys(ctx context.Context, server id.ServerName, body json.RawMessage) (json.RawMessage, error) {
	return r.Client.QueryKeys(ctx, server, body)
}

// ClaimKeys implements keys.RemoteKeys.
func (r RemoteReads) ClaimKeys(ctx context.Context, server id.ServerName, body json.RawMessage) (json.RawMessage, error) {
	return r.Client.ClaimKeys(ctx, server, body)
}

// UserDevices implements keys.RemoteDevices (the remote device list cache).
func (r RemoteReads) UserDevices(ctx context.Context, user id.UserID) (json.RawMessage, error) {
	return r.Client.UserDevices(ctx, user)
}
