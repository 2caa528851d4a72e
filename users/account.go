package users

import (
	"time"

	"github.com/parleyhq/parley/id"
)

// Account is one local user account.
type Account struct {
	UserID       id.UserID
	PasswordHash string // argon2id PHC string; "" when the account has no password
	IsGuest      bool
	IsAdmin      bool
	Deactivated  bool
	CreatedAt    time.Time
	// DisplayName is the initial profile display name of a new account
	// (CreateAccount stores it; "" stores none).
	DisplayName string
}

// Device is one login of a user (spec: "Relationship between access tokens
// and devices").
type Device struct {
	UserID      id.UserID
	DeviceID    id.DeviceID
	DisplayName string // "" when none was given
	LastSeenIP  string
	LastSeenAt  time.Time // zero when never seen
	CreatedAt   time.Time
}

// Requester is the authenticated user behind a request, as established from
// its access token.
type Requester struct {
	UserID   id.UserID
	DeviceID id.DeviceID
	IsGuest  bool
	IsAdmin  bool
	// ExpiresAt is when the access token stops working; zero when it does
	// not expire.
	ExpiresAt time.Time
}

// Session is what a successful login or registration hands the client.
type Session struct {
	UserID       id.UserID
	DeviceID     id.DeviceID
	AccessToken  string
	RefreshToken string        // "" unless the client asked for refresh tokens
	ExpiresIn    time.Duration // 0 when the access token does not expire
}
