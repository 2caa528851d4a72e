package users

import (
	"context"
	"time"

	"github.com/parleyhq/parley/id"
)

// NewSession is one login (or registration with login) to persist: the
// device is created or reused, and every token it held before is replaced
// (spec: "Relationship between access tokens and devices": a client that
// sets the device id invalidates the tokens previously assigned to it).
type NewSession struct {
	UserID      id.UserID
	DeviceID    id.DeviceID
	DisplayName string // only used when the device is created
	AccessHash  TokenHash
	RefreshHash *TokenHash // nil: no refresh token
	ExpiresAt   time.Time  // zero: the access token does not expire
	CreatedAt   time.Time
}

// AccessTokenInfo is what the store knows about one access token.
type AccessTokenInfo struct {
	UserID    id.UserID
	DeviceID  id.DeviceID
	IsGuest   bool
	IsAdmin   bool
	ExpiresAt time.Time // zero: does not expire
	// Used says the token has been used at least once; the first use of a
	// refreshed access token revokes the refresh token it came from.
	Used bool
}

// LastSeen is one coalesced device activity record.
type LastSeen struct {
	UserID   id.UserID
	DeviceID id.DeviceID
	IP       string
	At       time.Time
}

// AccountStore persists accounts.
type AccountStore interface {
	// CreateAccount inserts the account and, when s is not nil, its first
	// device and tokens, in one transaction. ErrExists when the user id is
	// taken.
	CreateAccount(ctx context.Context, a Account, s *NewSession) error
	Account(ctx context.Context, user id.UserID) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	SetPasswordHash(ctx context.Context, user id.UserID, hash string) error
	// DeactivateAccount marks the account deactivated, clears its password
	// and deletes its devices and tokens.
	DeactivateAccount(ctx context.Context, user id.UserID) error
}

// DeviceStore persists devices and the tokens bound to them.
type DeviceStore interface {
	CreateSession(ctx context.Context, s NewSession) error
	Devices(ctx context.Context, user id.UserID) ([]Device, error)
	Device(ctx context.Context, user id.UserID, device id.DeviceID) (Device, error)
	SetDeviceName(ctx context.Context, user id.UserID, device id.DeviceID, name string) error
	// DeleteDevices deletes the devices and their tokens; unknown ids are
	// ignored.
	DeleteDevices(ctx context.Context, user id.UserID, devices []id.DeviceID) error
	// DeleteDevicesExcept deletes every device of user but keep ("" keeps
	// none).
	DeleteDevicesExcept(ctx context.Context, user id.UserID, keep id.DeviceID) ([]id.DeviceID, error)
	UpdateLastSeen(ctx context.Context, seen []LastSeen) error
}

// TokenStore looks tokens up and rotates them.
type TokenStore interface {
	AccessToken(ctx context.Context, h TokenHash) (AccessTokenInfo, error)
	// MarkAccessTokenUsed records the first use of a token and revokes the
	// refresh token its own refresh token replaced.
	MarkAccessTokenUsed(ctx context.Context, h TokenHash) error
	// RotateRefreshToken replaces the refresh token old by a new access and
	// refresh token for the same device; the previous access tokens of that
	// refresh chain are deleted. ErrNotFound when old is unknown.
	RotateRefreshToken(ctx context.Context, old TokenHash, access, refresh TokenHash, expiresAt, now time.Time) (id.UserID, id.DeviceID, error)
	CreateLoginToken(ctx context.Context, h TokenHash, user id.UserID, expiresAt time.Time) error
	// ConsumeLoginToken deletes the token and returns its user if it had not
	// expired at now; ErrNotFound otherwise.
	ConsumeLoginToken(ctx context.Context, h TokenHash, now time.Time) (id.UserID, error)
}

// UIASession is the persisted state of one user-interactive auth session.
type UIASession struct {
	ID        string
	Operation string
	UserID    id.UserID // "" for registration
	Completed []string
	// RegistrationToken is the token reserved by a completed
	// m.login.registration_token stage.
	RegistrationToken string
	CreatedAt         time.Time
	ExpiresAt         time.Time
}

// UIAStore persists UIA sessions, so that any node can continue a session.
type UIAStore interface {
	CreateUIASession(ctx context.Context, s UIASession) error
	// UIASession returns the session if it has not expired at now.
	UIASession(ctx context.Context, sessionID string, now time.Time) (UIASession, error)
	// CompleteUIAStage appends stage to the completed stages; regToken, when
	// not "", is remembered as the reserved registration token.
	CompleteUIAStage(ctx context.Context, sessionID, stage, regToken string) error
	DeleteUIASession(ctx context.Context, sessionID string) error
}

// RegistrationToken is an admin-created token for token-gated registration.
type RegistrationToken struct {
	Token       string
	UsesAllowed *int // nil: unlimited
	Pending     int
	Completed   int
	ExpiresAt   time.Time // zero: never expires
	CreatedAt   time.Time
}

// RegistrationTokenStore persists registration tokens and their use counts.
type RegistrationTokenStore interface {
	CreateRegistrationToken(ctx context.Context, t RegistrationToken) error
	RegistrationTokens(ctx context.Context) ([]RegistrationToken, error)
	RegistrationToken(ctx context.Context, token string) (RegistrationToken, error)
	// ReserveRegistrationToken counts one pending use if the token is valid
	// at now and has uses left; ErrNotFound otherwise.
	ReserveRegistrationToken(ctx context.Context, token string, now time.Time) error
	// CompleteRegistrationToken turns one pending use into a completed one.
	CompleteRegistrationToken(ctx context.Context, token string) error
}

// NonceStore persists the single-use nonces of shared-secret registration.
type NonceStore interface {
	CreateNonce(ctx context.Context, nonce string, expiresAt time.Time) error
	// ConsumeNonce deletes the nonce and reports whether it existed and had
	// not expired at now.
	ConsumeNonce(ctx context.Context, nonce string, now time.Time) (bool, error)
}

// Stores bundles the stores the Service needs; one storage type may
// implement them all.
type Stores struct {
	Accounts           AccountStore
	Devices            DeviceStore
	Tokens             TokenStore
	UIA                UIAStore
	RegistrationTokens RegistrationTokenStore
	Nonces             NonceStore
}
