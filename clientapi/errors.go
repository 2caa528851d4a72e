package clientapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/accountdata"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sso"
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
	// media: the content repository (spec: "Content repository" and its
	// security considerations for the codes).
	{media.ErrNotFound, mxerr.NotFound.Msg("Unknown media")},
	{media.ErrNotOwner, mxerr.Forbidden.Msg("This media id was created by another user")},
	{media.ErrAlreadyUploaded, mxerr.CannotOverwriteMedia.Msg("Media already uploaded")},
	{media.ErrQuotaExceeded, mxerr.Forbidden.Msg("Upload quota exceeded")},
	{media.ErrTooManyPending, mxerr.LimitExceeded.Msg("Too many pending uploads")},
	{media.ErrTooLarge, mxerr.TooLarge.Msg("Upload is larger than m.upload.size")},
	{media.ErrNotYetUploaded, mxerr.NotYetUploaded.Msg("Content has not yet been uploaded")},
	{media.ErrCannotThumbnail, mxerr.Unknown.WithStatus(http.StatusBadRequest).Msg("Cannot generate thumbnails for the requested content")},
	{media.ErrImageTooLarge, mxerr.TooLarge.Msg("Content is too large to thumbnail")},
	{media.ErrBadThumbnailParam, mxerr.InvalidParam.Msg("Invalid thumbnail size or method")},
	{media.ErrBadContentType, mxerr.InvalidParam.Msg("Content-Type is not a valid media type")},
	{media.ErrBadFilename, mxerr.InvalidParam.Msg("filename is not a valid file name")},
	{media.ErrStoreUnavailable, mxerr.Unknown.WithStatus(http.StatusServiceUnavailable).Msg("The media store is unavailable; nothing was stored, try again later")},
	{media.ErrPreviewDisabled, mxerr.Forbidden.Msg("URL previews are disabled on this server")},
	{media.ErrPreviewForbidden, mxerr.Forbidden.Msg("URL previews of this address are not allowed")},
	{media.ErrBadPreviewURL, mxerr.InvalidParam.Msg("url must be an http or https URL")},
	{media.ErrPreviewFailed, mxerr.Unknown.WithStatus(http.StatusBadGateway).Msg("Could not fetch the URL")},
	// rooms: unknown rooms, events and aliases; taken aliases.
	{rooms.ErrRoomNotFound, mxerr.NotFound.Msg("Unknown room")},
	{rooms.ErrEventNotFound, mxerr.NotFound.Msg("Event not found")},
	{rooms.ErrAliasNotFound, mxerr.NotFound.Msg("Room alias not found")},
	{rooms.ErrAliasExists, mxerr.RoomInUse.Msg("Room alias already taken")},
	{rooms.ErrRoomExists, mxerr.RoomInUse.Msg("Room already exists")},
	// account data: an absent type.
	{accountdata.ErrNotFound, mxerr.NotFound.Msg("Account data not found")},
	// sso: the identity provider did not answer (discovery, JWKS).
	{sso.ErrProviderUnavailable, mxerr.Unknown.WithStatus(http.StatusBadGateway).Msg("The identity provider could not be reached; try again later")},
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
// client only sees a generic M_UNKNOWN. A request the client abandoned
// (its connection closed, so its context was cancelled) is not a server
// failure: it is logged at debug level.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	m, known := toMatrixError(err)
	if !known {
		level := slog.LevelError
		if clientGone(r, err) {
			level = slog.LevelDebug
		}
		a.Logger.LogAttrs(r.Context(), level, "request failed", slog.String("error", err.Error()))
	}
	writeMatrixError(w, m)
}

// clientGone tells whether err is the cancellation of a request whose
// client went away.
func clientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
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
