package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
)

// msc3814 is the prefix of the dehydrated device endpoints (MSC3814; the
// v1.19 spec has none).
const msc3814 = "/_matrix/client/unstable/org.matrix.msc3814.v1"

// mountDehydrated mounts the dehydrated device endpoints.
func (a *API) mountDehydrated(r chi.Router) {
	r.Put(msc3814+"/dehydrated_device", a.requireAuth(a.putDehydratedDevice))
	r.Get(msc3814+"/dehydrated_device", a.requireAuth(a.getDehydratedDevice))
	r.Delete(msc3814+"/dehydrated_device", a.requireAuth(a.deleteDehydratedDevice))
	r.Post(msc3814+"/dehydrated_device/{deviceId}/events", a.requireAuth(a.dehydratedEvents))
}

// putDehydratedDevice handles PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device.
func (a *API) putDehydratedDevice(w http.ResponseWriter, r *http.Request) {
	var body keys.DehydratedDeviceUpload
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	d, err := a.Keys.PutDehydratedDevice(r.Context(), requesterFrom(r.Context()).UserID, body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d})
}

// getDehydratedDevice handles GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device.
func (a *API) getDehydratedDevice(w http.ResponseWriter, r *http.Request) {
	d, data, err := a.Keys.DehydratedDevice(r.Context(), requesterFrom(r.Context()).UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d, "device_data": data})
}

// deleteDehydratedDevice handles DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device.
func (a *API) deleteDehydratedDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.Keys.DeleteDehydratedDevice(r.Context(), requesterFrom(r.Context()).UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d})
}

// dehydratedEvents handles POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events.
func (a *API) dehydratedEvents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		NextBatch string `json:"next_batch"`
	}
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	events, next, err := a.Keys.DehydratedEvents(r.Context(), requesterFrom(r.Context()).UserID,
		id.DeviceID(pathParam(r, "deviceId")), body.NextBatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if events == nil {
		events = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "next_batch": next})
}
