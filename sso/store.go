package sso

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/users"
)

// Errors the store returns.
var (
	// ErrNotFound: no such pending flow (or it expired), no such link.
	ErrNotFound = errors.New("sso: not found")
	// ErrExists: the external identity is linked already.
	ErrExists = errors.New("sso: already linked")
)

// Flow is one pending authorization at a provider, from the redirect to
// the callback. It is found by the hash of its state, which the browser
// carries both in the callback's query and in a cookie.
type Flow struct {
	StateHash    [32]byte
	Provider     string
	Nonce        string
	CodeVerifier string // PKCE (RFC 7636)
	// RedirectURL is the client a login hands its token to; UIASession,
	// instead, the session whose m.login.sso stage the flow completes.
	RedirectURL string
	UIASession  string
	ExpiresAt   time.Time
}

// Store keeps pending flows and the identities linked to accounts
// (user_external_ids).
type Store interface {
	CreateFlow(ctx context.Context, f Flow) error
	// ConsumeFlow deletes the flow and returns it if it had not expired at
	// now; ErrNotFound otherwise. A state is thus usable once.
	ConsumeFlow(ctx context.Context, stateHash [32]byte, now time.Time) (Flow, error)
	// LinkedProviders returns the providers at which user has a linked
	// identity.
	LinkedProviders(ctx context.Context, user id.UserID) ([]string, error)
	// ExternalUser returns the account linked to subject at provider;
	// ErrNotFound when none is.
	ExternalUser(ctx context.Context, provider, subject string) (id.UserID, error)
	// LinkExternalID links subject at provider to user; ErrExists when
	// that identity is linked already.
	LinkExternalID(ctx context.Context, provider, subject string, user id.UserID, at time.Time) error
	// CreateLinkedAccount creates a passwordless account and links subject
	// at provider to it, in one transaction: users.ErrExists when the user
	// id is taken, ErrExists when the identity got linked meanwhile (then
	// no account is left behind).
	CreateLinkedAccount(ctx context.Context, acc users.Account, provider, subject string) error
}

// Accounts is what SSO needs of the accounts domain (users.Service).
type Accounts interface {
	AccountState(ctx context.Context, user id.UserID) (exists, deactivated bool, err error)
	IssueLoginToken(ctx context.Context, user id.UserID) (string, error)
	UIASessionInfo(ctx context.Context, session string) (op string, user id.UserID, err error)
	CompleteSSOStage(ctx context.Context, session string, user id.UserID) error
	// ParseNewLocalpart validates a localpart for a new account.
	ParseNewLocalpart(username string) (id.UserID, error)
}
