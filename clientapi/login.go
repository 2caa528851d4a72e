package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/users"
)

// DecodeLoginRequest decodes the body of POST /login; the fuzz target and
// the WebSocket transport use it too.
func DecodeLoginRequest(body []byte) (users.LoginRequest, error) {
	var req users.LoginRequest
	err := DecodeJSONObject(body, &req, false)
	return req, err
}

// loginFlows handles GET /_matrix/client/v3/login: password login only
// when passwords are on, m.login.sso with its identity_providers when
// providers are configured, m.login.token always (it redeems SSO's and
// /login/get_token's tokens), and JWT login when configured.
func (a *API) loginFlows(w http.ResponseWriter, r *http.Request) {
	var flows []map[string]any
	if a.Users.PasswordEnabled() {
		flows = append(flows, map[string]any{"type": users.LoginPassword})
	}
	if a.SSO != nil {
		flows = append(flows, map[string]any{"type": "m.login.sso", "identity_providers": a.SSO.IdentityProviders()})
	}
	flows = append(flows, map[string]any{"type": users.LoginToken, "get_login_token": true})
	if a.Users.JWTEnabled() {
		flows = append(flows, map[string]any{"type": users.LoginJWT})
	}
	writeJSON(w, http.StatusOK, map[string]any{"flows": flows})
}

// login handles POST /_matrix/client/v3/login.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var req users.LoginRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Users.AllowLogin(clientIP(r), a.Users.LoginUser(req)); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.Users.Login(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.sessionBody(s))
}

// getLoginToken handles POST /_matrix/client/v1/login/get_token.
func (a *API) getLoginToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Auth *users.AuthData `json:"auth"`
	}
	if err := a.decodeOptionalJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	requester := requesterFrom(r.Context())
	if err := a.Users.AllowGetLoginToken(requester.UserID); err != nil {
		a.writeError(w, r, err)
		return
	}
	token, ttl, err := a.Users.GetLoginToken(r.Context(), requester, req.Auth)
	if err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"login_token": token, "expires_in_ms": ttl.Milliseconds()})
}

// refresh handles POST /_matrix/client/v3/refresh.
func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := a.Users.Refresh(r.Context(), req.RefreshToken)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  s.AccessToken,
		"refresh_token": s.RefreshToken,
		"expires_in_ms": s.ExpiresIn.Milliseconds(),
	})
}
