package profiles

import "errors"

// ErrUnknownUser: the store knows no local account with that user id.
var ErrUnknownUser = errors.New("profiles: unknown user")
