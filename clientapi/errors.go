package clientapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/users"
)

// errorTable maps the domain packages' sentinel errors to the Matrix error a
// client receives. It is the one place where that mapping happens; domain
// errors that are already *mxerr.Error pass through unchanged.
var errorTable = []struct {
	domain error
	matrix *mxerr.Error
}{
	// users: a device, account or token that vanished between lookups.
	{users.ErrNotFound, mxerr.NotFound},
	{users.ErrExists, mxerr.UserInUse},
	// rooms: unknown rooms, events and aliases; taken aliases.
	{rooms.ErrRoomNotFound, mxerr.NotFound.Msg("Unknown room")},
	{rooms.ErrEventNotFound, mxerr.NotFound.Msg("Event not found")},
	{rooms.ErrAliasNotFound, mxerr.NotFound.Msg("Room alias not found")},
	{rooms.ErrAliasExists, mxerr.RoomInUse.Msg("Room alias already taken")},
	{rooms.ErrRoomExists, mxerr.RoomInUse.Msg("Room already exists")},
}

// toMatrixError finds the Matrix error for err: its own when it is one, the
// table's when a sentinel matches, and M_UNKNOWN otherwise.
func toMatrixError(err error) (*mxerr.Error, bool) {
	if m, ok := mxerr.As(err); ok {
		return m, true
	}
	for _, entry := range errorTable {
		if errors.Is(err, entry.domain) {
			return entry.matrix, true
		}
	}
	return mxerr.Unknown, false
}

// writeError answers the request with the Matrix error for err. Errors
// nothing maps are logged here, once, with the request's context; the
// client only sees a generic M_UNKNOWN.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	m, known := toMatrixError(err)
	if !known {
		a.Logger.ErrorContext(r.Context(), "request failed", slog.String("error", err.Error()))
	}
	writeMatrixError(w, m)
}

func writeMatrixError(w http.ResponseWriter, m *mxerr.Error) {
	if ms, ok := m.Extra["retry_after_ms"]; ok {
		w.Header().Set("Retry-After", retryAfterSeconds(ms))
	}
	writeJSON(w, m.Status, m.Body())
}

// unrecognized answers unknown endpoints (404) and wrong methods (405) with
// M_UNRECOGNIZED, as the spec requires.
func (a *API) unrecognized(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msg := "Unrecognized request"
		if status == http.StatusMethodNotAllowed {
			msg = "Method not allowed for this endpoint"
		}
		writeMatrixError(w, mxerr.Unrecognized.WithStatus(status).Msg(msg))
	}
}

// retryAfterSeconds is the Retry-After header for a retry_after_ms value:
// whole seconds, rounded up so that a client never retries too early.
func retryAfterSeconds(ms any) string {
	var n int64
	switch v := ms.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	}
	return strconv.FormatInt((n+999)/1000, 10)
}
