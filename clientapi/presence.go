package clientapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// mountPresence mounts GET/PUT /presence/{userId}/status (client-server
// API "Presence").
func (a *API) mountPresence(r chi.Router, v string) {
	r.Get(v+"/presence/{userId}/status", a.requireAuth(a.getPresence))
	r.Put(v+"/presence/{userId}/status", a.requireAuth(a.putPresence))
}

// getPresence handles GET /_matrix/client/v3/presence/{userId}/status.
func (a *API) getPresence(w http.ResponseWriter, r *http.Request) {
	user, err := id.ParseUserID(pathParam(r, "userId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("userId is not a valid user id"))
		return
	}
	st, err := a.Presence.Status(r.Context(), requesterFrom(r.Context()).UserID, user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st.Content())
}

// putPresence handles PUT /_matrix/client/v3/presence/{userId}/status.
func (a *API) putPresence(w http.ResponseWriter, r *http.Request) {
	user, err := ownUserParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Presence  string  `json:"presence"`
		StatusMsg *string `json:"status_msg"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Presence.SetPresence(user, body.Presence, body.StatusMsg); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// quietSync reports a /sync that asks not to mark its user online
// (set_presence offline or unavailable): the auth middleware then does not
// count the request as activity.
func quietSync(r *http.Request) bool {
	if !strings.HasSuffix(r.URL.Path, "/sync") {
		return false
	}
	sp := r.URL.Query().Get("set_presence")
	return sp == "offline" || sp == "unavailable"
}
