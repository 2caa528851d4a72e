package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/users"
)

// DecodeRegisterRequest decodes the body of POST /register; the fuzz
// target and the WebSocket transport use it too.
func DecodeRegisterRequest(body []byte) (users.RegisterRequest, error) {
	var req users.RegisterRequest
	err := DecodeJSONObject(body, &req, false)
	return req, err
}

// register handles POST /_matrix/client/v3/register.
func (a *API) register(w http.ResponseWriter, r *http.Request) {
	if err := a.Users.AllowRegister(clientIP(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	var req users.RegisterRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	req.Kind = r.URL.Query().Get("kind")
	if req.Kind == "" {
		req.Kind = users.KindUser
	}
	res, err := a.Users.Register(r.Context(), req)
	if err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	if res.Session == nil {
		writeJSON(w, http.StatusOK, sessionResponse{UserID: string(res.UserID), HomeServer: string(a.Config.ServerName)})
		return
	}
	writeJSON(w, http.StatusOK, a.sessionBody(*res.Session))
}

// registerAvailable handles GET /_matrix/client/v3/register/available.
func (a *API) registerAvailable(w http.ResponseWriter, r *http.Request) {
	if err := a.Users.AllowRegister(clientIP(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Users.Available(r.Context(), r.URL.Query().Get("username")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"available": true})
}

// registrationTokenValidity handles GET
// /_matrix/client/v1/register/m.login.registration_token/validity.
func (a *API) registrationTokenValidity(w http.ResponseWriter, r *http.Request) {
	if err := a.Users.AllowRegister(clientIP(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		a.writeError(w, r, mxerr.MissingParam.Msg("Missing token"))
		return
	}
	valid, err := a.Users.RegistrationTokenValid(r.Context(), token)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"valid": valid})
}
