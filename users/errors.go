package users

import "errors"

// Errors the stores return; the domain turns them into Matrix errors where a
// client must see them.
var (
	// ErrNotFound: the account, device, token or session does not exist.
	ErrNotFound = errors.New("users: not found")
	// ErrExists: an account with that user id exists (deactivated ones included,
	// so that a deactivated id is never handed out again).
	ErrExists = errors.New("users: already exists")
)
