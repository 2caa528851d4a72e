package clientapi

import (
	"errors"
	"net/http"
	"net/url"
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
	var err error
	if req.FullState, err = boolQuery(q, "full_state"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.UseStateAfter, err = boolQuery(q, "use_state_after"); err != nil {
		a.writeError(w, r, err)
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
	ctx := r.Context()
	var parked *syncer.Parked
	if a.longPolls.canPark(w, r) {
		ctx, parked = syncer.ParkInstead(ctx)
	}
	resp, err := a.Sync.Sync(ctx, req)
	if errors.Is(err, syncer.ErrParked) {
		// It waits: parked without this goroutine (longpoll.go), or here
		// when the connection could not be taken over.
		if a.parkLongPoll(w, r, parked) {
			return
		}
		resp, err = parked.Wait(r.Context())
	}
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away while the long-poll waited.
			return
		}
		a.writeError(w, r, err)
		return
	}
	writeSyncAnswer(w, resp)
}

// boolQuery reads the boolean query parameter name: absent is false, and
// anything but "true" or "false" is M_INVALID_PARAM.
func boolQuery(q url.Values, name string) (bool, error) {
	switch q.Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, mxerr.InvalidParam.Msg(name + " must be true or false")
	}
}
