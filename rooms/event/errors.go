package event

import "errors"

// Sentinel errors. What the receiver must do differs by error (server-server
// API, "Checks performed on receipt of a PDU"): an invalid event or a bad or
// missing signature means dropping the event; a content hash mismatch means
// using its redacted form instead.
var (
	// ErrInvalidEvent: the event does not follow its room version's format.
	ErrInvalidEvent = errors.New("event: invalid event")
	// ErrTooLarge: the event is over 65536 bytes as canonical JSON.
	ErrTooLarge = errors.New("event: event too large")
	// ErrMissingSignature: a server that must have signed the event has no
	// signature on it by a key that could be found.
	ErrMissingSignature = errors.New("event: missing signature")
	// ErrBadSignature: a signature by a known key does not verify.
	ErrBadSignature = errors.New("event: bad signature")
	// ErrContentHashMismatch: the content hash does not match; the event
	// must be redacted before it is used.
	ErrContentHashMismatch = errors.New("event: content hash mismatch")
	// ErrUnsupportedVersion: the room version is unknown.
	ErrUnsupportedVersion = errors.New("event: unsupported room version")
)
