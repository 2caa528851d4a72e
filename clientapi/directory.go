package clientapi

import (
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// getDirectoryVisibility handles GET /_matrix/client/v3/directory/list/room/{roomId}.
func (a *API) getDirectoryVisibility(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	vis, err := a.Rooms.Visibility(r.Context(), room)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"visibility": vis})
}

// putDirectoryVisibility handles PUT /_matrix/client/v3/directory/list/room/{roomId}.
func (a *API) putDirectoryVisibility(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Visibility string `json:"visibility"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Rooms.SetVisibility(r.Context(), requesterFrom(r.Context()).UserID, room, body.Visibility); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// directoryServer is the ?server= of /publicRooms: "" for ours.
func directoryServer(r *http.Request) id.ServerName {
	return id.ServerName(r.URL.Query().Get("server"))
}

// getPublicRooms handles GET /_matrix/client/v3/publicRooms.
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.PublicRoomsRequest{Since: q.Get("since")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msg("limit must be an integer"))
			return
		}
		req.Limit = n
	}
	a.writePublicRooms(w, r, req)
}

// postPublicRooms handles POST /_matrix/client/v3/publicRooms.
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request) {
	var body rooms.PublicRoomsBody
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.writePublicRooms(w, r, body.Request())
}

func (a *API) writePublicRooms(w http.ResponseWriter, r *http.Request, req rooms.PublicRoomsRequest) {
	// Another server's directory is asked over federation.
	page, err := a.Rooms.PublicRoomsOf(r.Context(), directoryServer(r), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
