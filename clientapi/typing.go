package clientapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// mountEphemeral mounts typing, receipts, read markers and account data.
// Each group is mounted only when its service is wired.
func (a *API) mountEphemeral(r chi.Router) {
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		if a.Typing != nil {
			r.Put(v+"/rooms/{roomId}/typing/{userId}", a.requireAuth(a.setTyping))
		}
		if a.AccountData != nil {
			a.mountAccountData(r, v)
		}
		if a.Receipts != nil {
			a.mountReceipts(r, v)
		}
		if a.Presence != nil {
			a.mountPresence(r, v)
		}
	}
}

// ownUserParam is the {userId} path parameter, which must be the
// requester: these endpoints act on one's own data only (M_FORBIDDEN
// otherwise).
func ownUserParam(r *http.Request) (id.UserID, error) {
	u, err := id.ParseUserID(pathParam(r, "userId"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("userId is not a valid user id")
	}
	if u != requesterFrom(r.Context()).UserID {
		return "", mxerr.Forbidden.Msg("You cannot act for another user")
	}
	return u, nil
}

// setTyping handles PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}.
func (a *API) setTyping(w http.ResponseWriter, r *http.Request) {
	user, err := ownUserParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		Typing  *bool `json:"typing"`
		Timeout int64 `json:"timeout"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.Typing == nil {
		a.writeError(w, r, mxerr.BadJSON.Msg("typing is required"))
		return
	}
	timeout := time.Duration(body.Timeout) * time.Millisecond
	if err := a.Typing.SetTyping(r.Context(), user, room, *body.Typing, timeout); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
