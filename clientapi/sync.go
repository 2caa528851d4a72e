package clientapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/syncer"
)

// sync handles GET /_matrix/client/v3/sync.
func (a *API) sync(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := syncer.Request{
		User:        requesterFrom(r.Context()).UserID,
		Device:      requesterFrom(r.Context()).DeviceID,
		Since:       q.Get("since"),
		Filter:      q.Get("filter"),
		SetPresence: q.Get("set_presence"),
	}
	switch fs := q.Get("full_state"); fs {
	case "", "false":
	case "true":
		req.FullState = true
	default:
		a.writeError(w, r, mxerr.InvalidParam.Msg("full_state must be true or false"))
		return
	}
	switch v := q.Get("use_state_after"); v {
	case "", "false":
	case "true":
		req.UseStateAfter = true
	default:
		a.writeError(w, r, mxerr.InvalidParam.Msg("use_state_after must be true or false"))
		return
	}
	if t := q.Get("timeout"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms < 0 {
			a.writeError(w, r, mxerr.InvalidParam.Msg("timeout must be a non-negative number of milliseconds"))
			return
		}
		req.Timeout = time.Duration(min(ms, int64(time.Hour/time.Millisecond))) * time.Millisecond
	}
	resp, err := a.Sync.Sync(r.Context(), req)
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away while the long-poll waited.
			return
		}
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
