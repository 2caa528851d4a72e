package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// mountKeys mounts the end-to-end encryption endpoints (client-server API
// "End-to-end encryption", "Send-to-Device messaging", "Server-side key
// backups"). Without a keys service nothing is mounted.
func (a *API) mountKeys(r chi.Router) {
	if a.Keys == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Post(v+"/keys/upload", a.requireAuth(a.uploadKeys))
		r.Post(v+"/keys/query", a.requireAuth(a.queryKeys))
		r.Post(v+"/keys/claim", a.requireAuth(a.claimKeys))
		r.Get(v+"/keys/changes", a.requireAuth(a.keyChanges))
		r.Post(v+"/keys/device_signing/upload", a.requireAuth(a.uploadCrossSigning))
		r.Post(v+"/keys/signatures/upload", a.requireAuth(a.uploadSignatures))
		r.Put(v+"/sendToDevice/{eventType}/{txnId}", a.requireAuth(a.sendToDevice))
		a.mountRoomKeys(r, v)
	}
	// Clients of the time before v1.1 used the unstable prefix.
	r.Post("/_matrix/client/unstable/keys/device_signing/upload", a.requireAuth(a.uploadCrossSigning))
	r.Post("/_matrix/client/unstable/keys/signatures/upload", a.requireAuth(a.uploadSignatures))
	a.mountDehydrated(r)
}

// uploadKeys handles POST /_matrix/client/v3/keys/upload.
func (a *API) uploadKeys(w http.ResponseWriter, r *http.Request) {
	var body keys.UploadRequest
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := requesterFrom(r.Context())
	counts, err := a.Keys.Upload(r.Context(), req.UserID, req.DeviceID, body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"one_time_key_counts": counts})
}

// queryKeys handles POST /_matrix/client/v3/keys/query.
func (a *API) queryKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceKeys map[id.UserID][]id.DeviceID `json:"device_keys"`
		Timeout    *int64                      `json:"timeout"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.DeviceKeys == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("Missing device_keys"))
		return
	}
	ctx, cancel := remoteTimeout(r.Context(), body.Timeout)
	defer cancel()
	resp, err := a.Keys.Query(ctx, requesterFrom(r.Context()).UserID, body.DeviceKeys)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// claimKeys handles POST /_matrix/client/v3/keys/claim.
func (a *API) claimKeys(w http.ResponseWriter, r *http.Request) {
	var body struct {
		OneTimeKeys map[id.UserID]map[id.DeviceID]string `json:"one_time_keys"`
		Timeout     *int64                               `json:"timeout"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.OneTimeKeys == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("Missing one_time_keys"))
		return
	}
	ctx, cancel := remoteTimeout(r.Context(), body.Timeout)
	defer cancel()
	resp, err := a.Keys.Claim(ctx, body.OneTimeKeys)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// remoteTimeout applies a request's "timeout" (milliseconds: how long to
// wait for remote servers; the keys service caps it at 10 s) to ctx.
func remoteTimeout(ctx context.Context, ms *int64) (context.Context, context.CancelFunc) {
	if ms == nil || *ms <= 0 || *ms > 60_000 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(*ms)*time.Millisecond)
}

// keyChanges handles GET /_matrix/client/v3/keys/changes?from=&to=.
func (a *API) keyChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		a.writeError(w, r, mxerr.MissingParam.Msg("from and to are required"))
		return
	}
	from, err := syncer.ParseToken(q.Get("from"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	to, err := syncer.ParseToken(q.Get("to"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	changed, left, err := a.Keys.Changes(r.Context(), requesterFrom(r.Context()).UserID, from, to)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changed": changed, "left": left})
}

// uploadCrossSigning handles POST /_matrix/client/v3/keys/device_signing/upload
// (user-interactive auth unless it is the first upload).
func (a *API) uploadCrossSigning(w http.ResponseWriter, r *http.Request) {
	var body keys.CrossSigningUpload
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	req := requesterFrom(r.Context())
	if err := a.Keys.UploadCrossSigning(r.Context(), req.UserID, req.DeviceID, body); err != nil {
		a.writeAccountsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// uploadSignatures handles POST /_matrix/client/v3/keys/signatures/upload.
func (a *API) uploadSignatures(w http.ResponseWriter, r *http.Request) {
	var body map[id.UserID]map[string]json.RawMessage
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	resp, err := a.Keys.UploadSignatures(r.Context(), requesterFrom(r.Context()).UserID, body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// sendToDevice handles PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}.
func (a *API) sendToDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages map[id.UserID]map[id.DeviceID]json.RawMessage `json:"messages"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Messages == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("Missing messages"))
		return
	}
	req := requesterFrom(r.Context())
	err := a.Keys.SendToDevice(r.Context(), req.UserID, req.DeviceID, pathParam(r, "eventType"), pathParam(r, "txnId"), body.Messages)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}
