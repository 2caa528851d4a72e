package clientapi

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/users"
)

// mountAccounts mounts registration, login, logout, account and device
// management. Legacy r0 paths are served too: older clients still use them
// and they behave like v3. Without a users service (tests of the router
// base) nothing is mounted.
func (a *API) mountAccounts(r chi.Router) {
	if a.Users == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Post(v+"/register", a.register)
		r.Get(v+"/register/available", a.registerAvailable)
		r.Get(v+"/login", a.loginFlows)
		r.Post(v+"/login", a.login)
		r.Post(v+"/refresh", a.refresh)
		r.Post(v+"/logout", a.requireAuth(a.logout))
		r.Post(v+"/logout/all", a.requireAuth(a.logoutAll))
		r.Get(v+"/account/whoami", a.requireAuth(a.whoami))
		r.Post(v+"/account/password", a.requireAuth(a.changePassword))
		r.Post(v+"/account/deactivate", a.requireAuth(a.deactivate))
		r.Get(v+"/devices", a.requireAuth(a.listDevices))
		r.Get(v+"/devices/{deviceId}", a.requireAuth(a.getDevice))
		r.Put(v+"/devices/{deviceId}", a.requireAuth(a.renameDevice))
		r.Delete(v+"/devices/{deviceId}", a.requireAuth(a.deleteDevice))
		r.Post(v+"/delete_devices", a.requireAuth(a.deleteDevices))
	}
	r.Get("/_matrix/client/v1/register/m.login.registration_token/validity", a.registrationTokenValidity)
	r.Post("/_matrix/client/v1/login/get_token", a.requireAuth(a.getLoginToken))
	r.Get("/_synapse/admin/v1/register", a.sharedSecretNonce)
	r.Post("/_synapse/admin/v1/register", a.sharedSecretRegister)
}

// writeAccountsError is writeError plus the user-interactive auth answer:
// a 401 whose body carries the flows, the session and the completed stages
// (spec: "User-interactive API in the REST API").
func (a *API) writeAccountsError(w http.ResponseWriter, r *http.Request, err error) {
	var uia *users.UIARequired
	if errors.As(err, &uia) {
		writeJSON(w, http.StatusUnauthorized, uia.Body())
		return
	}
	a.writeError(w, r, err)
}

// sessionResponse is the body of a successful login or registration.
type sessionResponse struct {
	UserID       string `json:"user_id"`
	AccessToken  string `json:"access_token,omitempty"`
	DeviceID     string `json:"device_id,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresInMS  int64  `json:"expires_in_ms,omitempty"`
	HomeServer   string `json:"home_server"` // deprecated, still read by older clients
}

func (a *API) sessionBody(s users.Session) sessionResponse {
	return sessionResponse{
		UserID:       string(s.UserID),
		AccessToken:  s.AccessToken,
		DeviceID:     string(s.DeviceID),
		RefreshToken: s.RefreshToken,
		ExpiresInMS:  s.ExpiresIn.Milliseconds(),
		HomeServer:   string(a.Config.ServerName),
	}
}
