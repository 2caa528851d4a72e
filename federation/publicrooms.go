package federation

import (
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// getPublicRooms handles GET /_matrix/federation/v1/publicRooms: this
// server's published room directory ("Published Room Directory").
func (a *API) getPublicRooms(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := rooms.PublicRoomsRequest{Since: q.Get("since")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			a.writeError(w, r, mxerr.InvalidParam.Msg("limit must be a non-negative integer"))
			return
		}
		req.Limit = n
	}
	a.writePublicRooms(w, r, req)
}

// postPublicRooms handles POST /_matrix/federation/v1/publicRooms (with a
// filter).
func (a *API) postPublicRooms(w http.ResponseWriter, r *http.Request) {
	var body rooms.PublicRoomsBody
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Limit < 0 {
		a.writeError(w, r, mxerr.InvalidParam.Msg("limit must not be negative"))
		return
	}
	a.writePublicRooms(w, r, body.Request())
}

func (a *API) writePublicRooms(w http.ResponseWriter, r *http.Request, req rooms.PublicRoomsRequest) {
	page, err := a.d.Serve.Directory.PublicRoomsPage(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
