package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// pathUser reads the {userId} path parameter, percent-decoded: clients
// send @alice%3Aexample.org (matrix-js-sdk encodes both @ and :).
func pathUser(r *http.Request) (id.UserID, error) {
	u, err := id.ParseUserID(pathParam(r, "userId"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("userId is not a valid user id")
	}
	return u, nil
}

// uploadFilter handles POST /_matrix/client/v3/user/{userId}/filter.
func (a *API) uploadFilter(w http.ResponseWriter, r *http.Request) {
	owner, err := pathUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var raw json.RawMessage
	if err := a.decodeJSON(w, r, &raw); err != nil {
		a.writeError(w, r, err)
		return
	}
	filterID, err := a.Sync.UploadFilter(r.Context(), requesterFrom(r.Context()).UserID, owner, raw)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"filter_id": filterID})
}

// getFilter handles GET /_matrix/client/v3/user/{userId}/filter/{filterId}.
func (a *API) getFilter(w http.ResponseWriter, r *http.Request) {
	owner, err := pathUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	f, err := a.Sync.GetFilter(r.Context(), requesterFrom(r.Context()).UserID, owner, chi.URLParam(r, "filterId"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}
