package clientapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/users"
)

// deviceJSON is a device as GET /devices shows it.
type deviceJSON struct {
	DeviceID    id.DeviceID `json:"device_id"`
	DisplayName *string     `json:"display_name,omitempty"`
	LastSeenIP  *string     `json:"last_seen_ip,omitempty"`
	LastSeenTS  *int64      `json:"last_seen_ts,omitempty"`
}

func toDeviceJSON(d users.Device) deviceJSON {
	out := deviceJSON{DeviceID: d.DeviceID}
	if d.DisplayName != "" {
		out.DisplayName = &d.DisplayName
	}
	if d.LastSeenIP != "" {
		out.LastSeenIP = &d.LastSeenIP
	}
	if !d.LastSeenAt.IsZero() {
		ts := d.LastSeenAt.UnixMilli()
		out.LastSeenTS = &ts
	}
	return out
}

// listDevices handles GET /_matrix/client/v3/devices.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	devices, err := a.Users.Devices(r.Context(), requesterFrom(r.Context()).UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := make([]deviceJSON, len(devices))
	for i, d := range devices {
		out[i] = toDeviceJSON(d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// getDevice handles GET /_matrix/client/v3/devices/{deviceId}.
func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.Users.Device(r.Context(), requesterFrom(r.Context()).UserID, id.DeviceID(chi.URLParam(r, "deviceId")))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toDeviceJSON(d))
}

// renameDevice handles PUT /_matrix/client/v3/devices/{deviceId}.
func (a *API) renameDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DisplayName string `json:"display_name"`
	}
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	err := a.Users.RenameDevice(r.Context(), requesterFrom(r.Context()).UserID, id.DeviceID(chi.URLParam(r, "deviceId")), body.DisplayName)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// deleteDevice handles DELETE /_matrix/client/v3/devices/{deviceId}
// (user-interactive auth).
func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth *users.AuthData `json:"auth"`
	}
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := requesterFrom(r.Context())
	device := id.DeviceID(chi.URLParam(r, "deviceId"))
	// An unknown device is a 404 before any auth is asked for.
	if _, err := a.Users.Device(r.Context(), req.UserID, device); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Users.DeleteDevices(r.Context(), req, body.Auth, []id.DeviceID{device}); err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// deleteDevices handles POST /_matrix/client/v3/delete_devices
// (user-interactive auth).
func (a *API) deleteDevices(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Devices []id.DeviceID   `json:"devices"`
		Auth    *users.AuthData `json:"auth"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Devices == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("Missing devices"))
		return
	}
	if err := a.Users.DeleteDevices(r.Context(), requesterFrom(r.Context()), body.Auth, body.Devices); err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}
