package federation

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/mxerr"
)

// DeviceKeys is what the device and E2EE key endpoints read
// (*keys.Service); its answers are the response bodies.
type DeviceKeys interface {
	UserDevices(ctx context.Context, user id.UserID) (json.RawMessage, error)
	FederationQueryKeys(ctx context.Context, deviceKeys map[id.UserID][]id.DeviceID) (json.RawMessage, error)
	FederationClaimKeys(ctx context.Context, oneTimeKeys map[id.UserID]map[id.DeviceID]string) (json.RawMessage, error)
}

var _ DeviceKeys = (*keys.Service)(nil)

// userDevices handles GET /_matrix/federation/v1/user/devices/{userId}.
func (a *API) userDevices(w http.ResponseWriter, r *http.Request) {
	user, err := id.ParseUserID(pathParam(r, "userId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid user id"))
		return
	}
	body, err := a.d.Serve.Devices.UserDevices(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// queryUserKeys handles POST /_matrix/federation/v1/user/keys/query.
func (a *API) queryUserKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceKeys map[id.UserID][]id.DeviceID `json:"device_keys"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.DeviceKeys == nil {
		a.writeError(w, r, mxerr.BadJSON.Msg("device_keys is required"))
		return
	}
	out, err := a.d.Serve.Devices.FederationQueryKeys(r.Context(), body.DeviceKeys)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// claimUserKeys handles POST /_matrix/federation/v1/user/keys/claim.
func (a *API) claimUserKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OneTimeKeys map[id.UserID]map[id.DeviceID]string `json:"one_time_keys"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.OneTimeKeys == nil {
		a.writeError(w, r, mxerr.BadJSON.Msg("one_time_keys is required"))
		return
	}
	out, err := a.d.Serve.Devices.FederationClaimKeys(r.Context(), body.OneTimeKeys)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
