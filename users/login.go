package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Login types (spec: "Login").
const (
	LoginPassword = "m.login.password"
	LoginToken    = "m.login.token"
)

// LoginRequest is the body of POST /login, decoded by the edge.
type LoginRequest struct {
	Type                     string      `json:"type"`
	Identifier               *Identifier `json:"identifier,omitempty"`
	User                     string      `json:"user,omitempty"` // deprecated in favour of identifier
	Password                 string      `json:"password,omitempty"`
	Token                    string      `json:"token,omitempty"`
	DeviceID                 id.DeviceID `json:"device_id,omitempty"`
	InitialDeviceDisplayName string      `json:"initial_device_display_name,omitempty"`
	RefreshToken             bool        `json:"refresh_token,omitempty"`
}

// maxPasswordBytes bounds what argon2 is asked to hash.
const maxPasswordBytes = 512

var errBadLogin = mxerr.Forbidden.Msg("Invalid username or password")

// identify resolves an identifier (or the legacy user field) to a local
// user id: a localpart or a full user id of this server (spec: "Matrix
// User ID" identifier). New accounts are lower-case, so the localpart is
// lower-cased: logging in as @Alice finds @alice.
func (s *Service) identify(ident *Identifier, legacyUser string) (id.UserID, *mxerr.Error) {
	user := legacyUser
	if ident != nil {
		if ident.Type != "m.id.user" {
			return "", mxerr.Unrecognized.WithStatus(400).Msgf("Identifier type %q is not supported", ident.Type)
		}
		user = ident.User
	}
	if user == "" {
		return "", mxerr.MissingParam.Msg("Missing user identifier")
	}
	if strings.HasPrefix(user, "@") {
		uid, err := id.ParseUserID(user)
		if err != nil {
			return "", mxerr.InvalidParam.Msg("Invalid user id")
		}
		if uid.Server() != s.cfg.ServerName {
			return "", errBadLogin
		}
		user = uid.Localpart()
	}
	return id.NewUserID(strings.ToLower(user), s.cfg.ServerName), nil
}

// LoginUser returns the user a login request names, for per-user rate
// limiting before any database work; "" when it names none.
func (s *Service) LoginUser(req LoginRequest) id.UserID {
	if req.Type != LoginPassword {
		return ""
	}
	user, err := s.identify(req.Identifier, req.User)
	if err != nil {
		return ""
	}
	return user
}

// checkPassword verifies the password of user. Unknown users, users
// without a password and deactivated users are checked against a dummy
// hash so that every outcome costs one argon2id run.
func (s *Service) checkPassword(ctx context.Context, user id.UserID, password string) (Account, error) {
	if len(password) > maxPasswordBytes {
		return Account{}, errBadLogin
	}
	acc, err := s.st.Accounts.Account(ctx, user)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Account{}, fmt.Errorf("load account: %w", err)
	}
	hash := acc.PasswordHash
	if hash == "" {
		hash = s.dummy
	}
	ok, verr := VerifyPassword(hash, password)
	if verr != nil {
		return Account{}, fmt.Errorf("verify password of %s: %w", user, verr)
	}
	if acc.Deactivated && acc.UserID != "" {
		return Account{}, mxerr.UserDeactivated
	}
	if !ok || acc.PasswordHash == "" {
		return Account{}, errBadLogin
	}
	return acc, nil
}

// Login handles POST /login: a password or login-token login creates a
// device (or reuses the one named) and returns its tokens.
func (s *Service) Login(ctx context.Context, req LoginRequest) (Session, error) {
	var user id.UserID
	switch req.Type {
	case LoginPassword:
		if s.cfg.PasswordDisabled {
			return Session{}, errPasswordsOff
		}
		u, merr := s.identify(req.Identifier, req.User)
		if merr != nil {
			return Session{}, merr
		}
		if _, err := s.checkPassword(ctx, u, req.Password); err != nil {
			return Session{}, err
		}
		user = u
	case LoginToken:
		if req.Token == "" {
			return Session{}, mxerr.MissingParam.Msg("Missing token")
		}
		u, err := s.st.Tokens.ConsumeLoginToken(ctx, HashToken(req.Token), s.now())
		if errors.Is(err, ErrNotFound) {
			return Session{}, mxerr.Forbidden.Msg("Invalid or expired login token")
		}
		if err != nil {
			return Session{}, err
		}
		acc, err := s.st.Accounts.Account(ctx, u)
		if err != nil {
			return Session{}, fmt.Errorf("load account: %w", err)
		}
		if acc.Deactivated {
			return Session{}, mxerr.UserDeactivated
		}
		user = u
	case LoginJWT:
		u, err := s.loginJWT(ctx, req.Token)
		if err != nil {
			return Session{}, err
		}
		user = u
	case "":
		return Session{}, mxerr.MissingParam.Msg("Missing login type")
	default:
		return Session{}, mxerr.Unknown.WithStatus(400).Msgf("Unknown login type %q", req.Type)
	}
	device, err := s.deviceIDOrNew(req.DeviceID)
	if err != nil {
		return Session{}, err
	}
	ns, out := s.newSession(user, device, req.InitialDeviceDisplayName, req.RefreshToken)
	if err := s.st.Devices.CreateSession(ctx, ns); err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	// Tokens of a reused device are gone; drop them from this node's cache.
	s.cache.invalidate(user, device)
	return out, nil
}

// deviceIDOrNew validates a client-chosen device id or draws one.
func (s *Service) deviceIDOrNew(d id.DeviceID) (id.DeviceID, error) {
	if d == "" {
		return id.DeviceID(newDeviceID()), nil
	}
	if len(d) > id.MaxLength {
		return "", mxerr.InvalidParam.Msg("device_id is too long")
	}
	for _, c := range []byte(d) {
		if c < 0x21 || c > 0x7e {
			return "", mxerr.InvalidParam.Msg("device_id has a forbidden character")
		}
	}
	return d, nil
}

// GetLoginToken handles POST /login/get_token: after UIA, a single-use
// token that logs another client in as the requester.
func (s *Service) GetLoginToken(ctx context.Context, r Requester, auth *AuthData) (string, time.Duration, error) {
	if r.IsGuest {
		return "", 0, mxerr.GuestAccessForbidden
	}
	done, err := s.checkUIA(ctx, OpGetLoginToken, &r, auth)
	if err != nil {
		return "", 0, err
	}
	token := newToken(prefixLogin)
	if err := s.st.Tokens.CreateLoginToken(ctx, HashToken(token), r.UserID, s.now().Add(s.cfg.LoginTokenLifetime)); err != nil {
		return "", 0, err
	}
	if err := s.finishUIA(ctx, done); err != nil {
		return "", 0, err
	}
	return token, s.cfg.LoginTokenLifetime, nil
}
