package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/users"
)

// sharedSecretNonce handles GET /_synapse/admin/v1/register: the nonce for
// shared-secret registration, the endpoint tooling such as
// register_new_matrix_user and test harnesses drive. It only exists when
// registration.shared_secret is set.
func (a *API) sharedSecretNonce(w http.ResponseWriter, r *http.Request) {
	if !a.Users.SharedSecretEnabled() {
		a.unrecognized(http.StatusNotFound)(w, r)
		return
	}
	nonce, err := a.Users.NewRegistrationNonce(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"nonce": nonce})
}

// sharedSecretRegister handles POST /_synapse/admin/v1/register.
func (a *API) sharedSecretRegister(w http.ResponseWriter, r *http.Request) {
	if !a.Users.SharedSecretEnabled() {
		a.unrecognized(http.StatusNotFound)(w, r)
		return
	}
	var req users.SharedSecretRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.Users.SharedSecretRegister(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.sessionBody(s))
}
