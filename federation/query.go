package federation

import (
	"context"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/rooms"
)

// ProfileReader is what /query/profile reads (*profiles.Service).
type ProfileReader interface {
	LocalProfile(ctx context.Context, user id.UserID, field string) (profiles.Profile, error)
}

// DirectoryReader is what /query/directory and /publicRooms read
// (*rooms.Service).
type DirectoryReader interface {
	QueryDirectory(ctx context.Context, alias id.RoomAlias) (id.RoomID, []id.ServerName, error)
	PublicRoomsPage(ctx context.Context, req rooms.PublicRoomsRequest) (*rooms.PublicRooms, error)
}

var (
	_ ProfileReader   = (*profiles.Service)(nil)
	_ DirectoryReader = (*rooms.Service)(nil)
)

// queryProfile handles GET /_matrix/federation/v1/query/profile.
func (a *API) queryProfile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("user_id") {
		a.writeError(w, r, mxerr.MissingParam.Msg("user_id is required"))
		return
	}
	user, err := id.ParseUserID(q.Get("user_id"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid user_id"))
		return
	}
	p, err := a.d.Serve.Profiles.LocalProfile(r.Context(), user, q.Get("field"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// queryDirectory handles GET /_matrix/federation/v1/query/directory.
func (a *API) queryDirectory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("room_alias") {
		a.writeError(w, r, mxerr.MissingParam.Msg("room_alias is required"))
		return
	}
	alias, err := id.ParseRoomAlias(q.Get("room_alias"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid room_alias"))
		return
	}
	room, servers, err := a.d.Serve.Directory.QueryDirectory(r.Context(), alias)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_id": room, "servers": servers})
}
