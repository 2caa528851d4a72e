package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/users"
)

// whoami handles GET /_matrix/client/v3/account/whoami.
func (a *API) whoami(w http.ResponseWriter, r *http.Request) {
	req := requesterFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"user_id":   req.UserID,
		"device_id": req.DeviceID,
		"is_guest":  req.IsGuest,
	})
}

// changePassword handles POST /_matrix/client/v3/account/password.
func (a *API) changePassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth          *users.AuthData `json:"auth"`
		NewPassword   string          `json:"new_password"`
		LogoutDevices *bool           `json:"logout_devices"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	logout := body.LogoutDevices == nil || *body.LogoutDevices // the spec's default is true
	if err := a.Users.ChangePassword(r.Context(), requesterFrom(r.Context()), body.Auth, body.NewPassword, logout); err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// deactivate handles POST /_matrix/client/v3/account/deactivate.
func (a *API) deactivate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth     *users.AuthData `json:"auth"`
		IDServer string          `json:"id_server"`
		Erase    bool            `json:"erase"`
	}
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Users.Deactivate(r.Context(), requesterFrom(r.Context()), body.Auth); err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	// No identity server bindings are kept, so there is nothing to unbind.
	writeJSON(w, http.StatusOK, map[string]string{"id_server_unbind_result": "no-support"})
}
