package clientapi

import "net/http"

// logout handles POST /_matrix/client/v3/logout.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.Users.Logout(r.Context(), requesterFrom(r.Context())); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// logoutAll handles POST /_matrix/client/v3/logout/all.
func (a *API) logoutAll(w http.ResponseWriter, r *http.Request) {
	if err := a.Users.LogoutAll(r.Context(), requesterFrom(r.Context()).UserID); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}
