// Package mxerr is Parley's one Matrix error type: an errcode, an HTTP status
// and a message that is safe to show a client. Values are declared once as
// sentinels (mxerr.Forbidden, mxerr.NotJSON, …); Msg and Msgf derive an error
// with a specific message that still matches its sentinel with errors.Is.
//
// Domain packages may return these errors when the Matrix errcode is the
// domain's own answer (a forbidden action, an unknown room); errors that are
// not Matrix errors are mapped at the edge (clientapi, federation) and become
// M_UNKNOWN with a generic message when nothing maps them.
package mxerr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a Matrix error as sent to a client or a peer.
type Error struct {
	Code    string // the errcode, for example "M_FORBIDDEN"
	Status  int    // the HTTP status code
	Message string // safe to show a client

	// Extra holds additional top-level fields of the error body, for
	// example retry_after_ms or soft_logout.
	Extra map[string]any
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is makes errors.Is match any two errors with the same errcode, so that
// errors.Is(err, mxerr.Forbidden) holds for mxerr.Forbidden.Msg("…").
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Msg returns a copy of the error with the given message.
func (e *Error) Msg(message string) *Error {
	c := *e
	c.Message = message
	return &c
}

// Msgf returns a copy of the error with a formatted message.
func (e *Error) Msgf(format string, args ...any) *Error {
	return e.Msg(fmt.Sprintf(format, args...))
}

// With returns a copy of the error with one extra top-level field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// WithStatus returns a copy of the error with another HTTP status, for the
// errcodes the spec uses with several statuses.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// Body is the JSON body of the error: {"errcode": …, "error": …, extras…}.
func (e *Error) Body() map[string]any {
	body := make(map[string]any, len(e.Extra)+2)
	for k, v := range e.Extra {
		body[k] = v
	}
	body["errcode"] = e.Code
	body["error"] = e.Message
	return body
}

// As returns the Matrix error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

func def(code string, status int, message string) *Error {
	return &Error{Code: code, Status: status, Message: message}
}

// The errcodes of the Client-Server and Server-Server APIs, with the status
// the spec pairs them with most often.
var (
	Forbidden                = def("M_FORBIDDEN", http.StatusForbidden, "Forbidden")
	UnknownToken             = def("M_UNKNOWN_TOKEN", http.StatusUnauthorized, "Unknown access token")
	MissingToken             = def("M_MISSING_TOKEN", http.StatusUnauthorized, "Missing access token")
	UserLocked               = def("M_USER_LOCKED", http.StatusUnauthorized, "The account is locked")
	UserSuspended            = def("M_USER_SUSPENDED", http.StatusForbidden, "The account is suspended")
	BadJSON                  = def("M_BAD_JSON", http.StatusBadRequest, "Malformed JSON")
	NotJSON                  = def("M_NOT_JSON", http.StatusBadRequest, "Content is not JSON")
	NotFound                 = def("M_NOT_FOUND", http.StatusNotFound, "Not found")
	LimitExceeded            = def("M_LIMIT_EXCEEDED", http.StatusTooManyRequests, "Too many requests")
	Unrecognized             = def("M_UNRECOGNIZED", http.StatusNotFound, "Unrecognized request")
	Unknown                  = def("M_UNKNOWN", http.StatusInternalServerError, "Internal server error")
	Unauthorized             = def("M_UNAUTHORIZED", http.StatusUnauthorized, "Unauthorized")
	UserDeactivated          = def("M_USER_DEACTIVATED", http.StatusForbidden, "The account is deactivated")
	UserInUse                = def("M_USER_IN_USE", http.StatusBadRequest, "User ID already taken")
	InvalidUsername          = def("M_INVALID_USERNAME", http.StatusBadRequest, "Invalid user name")
	RoomInUse                = def("M_ROOM_IN_USE", http.StatusBadRequest, "Room alias already taken")
	InvalidRoomState         = def("M_INVALID_ROOM_STATE", http.StatusBadRequest, "Invalid room state")
	ThreepidInUse            = def("M_THREEPID_IN_USE", http.StatusBadRequest, "Third-party identifier already in use")
	ThreepidNotFound         = def("M_THREEPID_NOT_FOUND", http.StatusBadRequest, "Third-party identifier not found")
	ThreepidAuthFailed       = def("M_THREEPID_AUTH_FAILED", http.StatusUnauthorized, "Third-party authentication failed")
	ThreepidDenied           = def("M_THREEPID_DENIED", http.StatusForbidden, "Third-party identifier not allowed")
	ServerNotTrusted         = def("M_SERVER_NOT_TRUSTED", http.StatusUnauthorized, "Server not trusted")
	UnsupportedRoomVersion   = def("M_UNSUPPORTED_ROOM_VERSION", http.StatusBadRequest, "Unsupported room version")
	IncompatibleRoomVersion  = def("M_INCOMPATIBLE_ROOM_VERSION", http.StatusBadRequest, "Incompatible room version")
	BadState                 = def("M_BAD_STATE", http.StatusBadRequest, "Bad state")
	GuestAccessForbidden     = def("M_GUEST_ACCESS_FORBIDDEN", http.StatusForbidden, "Guest access forbidden")
	CaptchaNeeded            = def("M_CAPTCHA_NEEDED", http.StatusUnauthorized, "Captcha needed")
	CaptchaInvalid           = def("M_CAPTCHA_INVALID", http.StatusUnauthorized, "Captcha invalid")
	MissingParam             = def("M_MISSING_PARAM", http.StatusBadRequest, "Missing parameter")
	InvalidParam             = def("M_INVALID_PARAM", http.StatusBadRequest, "Invalid parameter")
	TooLarge                 = def("M_TOO_LARGE", http.StatusRequestEntityTooLarge, "Request too large")
	Exclusive                = def("M_EXCLUSIVE", http.StatusBadRequest, "Namespace reserved by an application service")
	ResourceLimitExceeded    = def("M_RESOURCE_LIMIT_EXCEEDED", http.StatusForbidden, "Resource limit exceeded")
	CannotLeaveServerNotice  = def("M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", http.StatusForbidden, "Cannot leave server notice room")
	ThreepidMediumNotSupport = def("M_THREEPID_MEDIUM_NOT_SUPPORTED", http.StatusBadRequest, "Third-party medium not supported")
	WeakPassword             = def("M_WEAK_PASSWORD", http.StatusBadRequest, "Password too weak")
	UnableToAuthoriseJoin    = def("M_UNABLE_TO_AUTHORISE_JOIN", http.StatusBadRequest, "Unable to authorise join")
	UnableToGrantJoin        = def("M_UNABLE_TO_GRANT_JOIN", http.StatusBadRequest, "Unable to grant join")
	NotYetUploaded           = def("M_NOT_YET_UPLOADED", http.StatusGatewayTimeout, "Not yet uploaded")
	CannotOverwriteMedia     = def("M_CANNOT_OVERWRITE_MEDIA", http.StatusConflict, "Cannot overwrite media")
	UnknownPos               = def("M_UNKNOWN_POS", http.StatusBadRequest, "Unknown position")
	Unactionable             = def("M_UNACTIONABLE", http.StatusBadRequest, "Unactionable")
	// Profile field limits (client-server API v1.16, PUT /profile/{userId}/{keyName}).
	ProfileTooLarge = def("M_PROFILE_TOO_LARGE", http.StatusBadRequest, "The profile would exceed 64 KiB")
	KeyTooLarge     = def("M_KEY_TOO_LARGE", http.StatusBadRequest, "The profile key exceeds 255 bytes")
)
