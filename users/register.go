package users

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Registration kinds (spec: POST /register, query parameter kind).
const (
	KindUser  = "user"
	KindGuest = "guest"
)

// RegisterRequest is the body of POST /register plus its kind.
type RegisterRequest struct {
	Kind                     string      `json:"-"`
	Auth                     *AuthData   `json:"auth,omitempty"`
	Username                 string      `json:"username,omitempty"`
	Password                 string      `json:"password,omitempty"`
	DeviceID                 id.DeviceID `json:"device_id,omitempty"`
	InitialDeviceDisplayName string      `json:"initial_device_display_name,omitempty"`
	InhibitLogin             bool        `json:"inhibit_login,omitempty"`
	RefreshToken             bool        `json:"refresh_token,omitempty"`
}

// RegisterResult is the new account and, unless login was inhibited, its
// first session.
type RegisterResult struct {
	UserID  id.UserID
	Session *Session
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// Register handles POST /register.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (RegisterResult, error) {
	switch req.Kind {
	case KindGuest:
		return s.registerGuest(ctx, req)
	case KindUser, "":
	default:
		return RegisterResult{}, mxerr.InvalidParam.Msgf("Unknown kind %q", req.Kind)
	}
	if s.cfg.RegistrationMode == "closed" {
		return RegisterResult{}, mxerr.Forbidden.Msg("Registration is disabled")
	}
	if req.Password != "" && s.cfg.PasswordDisabled {
		return RegisterResult{}, errPasswordsOff
	}
	if len(req.Password) > maxPasswordBytes {
		return RegisterResult{}, mxerr.InvalidParam.Msg("Password is too long")
	}
	var user id.UserID
	if req.Username != "" {
		// Checked before UIA so that the client learns early (spec:
		// "Account registration").
		u, err := s.checkAvailable(ctx, req.Username)
		if err != nil {
			return RegisterResult{}, err
		}
		user = u
	}
	done, err := s.checkUIA(ctx, OpRegister, nil, req.Auth)
	if err != nil {
		return RegisterResult{}, err
	}
	if user == "" {
		user = id.NewUserID(randomString(12, lowerAlnum), s.cfg.ServerName)
	}
	res, err := s.createAccount(ctx, user, req.Password, false, false, req)
	if err != nil {
		return RegisterResult{}, err
	}
	if err := s.finishUIA(ctx, done); err != nil {
		return RegisterResult{}, err
	}
	return res, nil
}

// registerGuest creates a guest account with a random localpart; the spec
// says every parameter but initial_device_display_name is ignored.
func (s *Service) registerGuest(ctx context.Context, req RegisterRequest) (RegisterResult, error) {
	if !s.cfg.AllowGuests {
		return RegisterResult{}, mxerr.Forbidden.Msg("Guest access is disabled")
	}
	user := id.NewUserID("guest-"+randomString(12, lowerAlnum), s.cfg.ServerName)
	return s.createAccount(ctx, user, "", true, false, RegisterRequest{InitialDeviceDisplayName: req.InitialDeviceDisplayName})
}

// createAccount stores the account and, unless req.InhibitLogin, its first
// device and tokens, in one transaction.
func (s *Service) createAccount(ctx context.Context, user id.UserID, password string, guest, admin bool, req RegisterRequest) (RegisterResult, error) {
	// The default display name is the localpart (spec: "Profiles"
	// leaves it to the server; clients show it until the user sets one).
	acc := Account{UserID: user, IsGuest: guest, IsAdmin: admin, CreatedAt: s.now(), DisplayName: user.Localpart()}
	if password != "" {
		h, err := HashPassword(password, s.cfg.Password)
		if err != nil {
			return RegisterResult{}, err
		}
		acc.PasswordHash = h
	}
	res := RegisterResult{UserID: user}
	var ns *NewSession
	if !req.InhibitLogin {
		device, err := s.deviceIDOrNew(req.DeviceID)
		if err != nil {
			return RegisterResult{}, err
		}
		n, out := s.newSession(user, device, req.InitialDeviceDisplayName, req.RefreshToken)
		ns, res.Session = &n, &out
	}
	err := s.st.Accounts.CreateAccount(ctx, acc, ns)
	if errors.Is(err, ErrExists) {
		return RegisterResult{}, mxerr.UserInUse
	}
	if err != nil {
		return RegisterResult{}, fmt.Errorf("create account %s: %w", user, err)
	}
	return res, nil
}

// ParseNewLocalpart turns a requested user name into the user id of a new
// account: lower-cased (new accounts follow the spec's lower-case grammar,
// clients asking for "Alice" get "alice") and validated.
func (s *Service) ParseNewLocalpart(username string) (id.UserID, error) {
	local := strings.ToLower(username)
	if strings.HasPrefix(local, "@") {
		uid, err := id.ParseUserID(username)
		if err != nil || uid.Server() != s.cfg.ServerName {
			return "", mxerr.InvalidUsername.Msg("User name must be a localpart of this server")
		}
		local = strings.ToLower(uid.Localpart())
	}
	if !id.ValidNewLocalpart(local) {
		return "", mxerr.InvalidUsername.Msg("User name may only contain a-z, 0-9 and ._=-/+")
	}
	user := id.NewUserID(local, s.cfg.ServerName)
	if len(user) > id.MaxLength {
		return "", mxerr.InvalidUsername.Msg("User id is longer than 255 bytes")
	}
	return user, nil
}

// checkAvailable validates username and reports M_USER_IN_USE when an
// account (deactivated ones included) has it.
func (s *Service) checkAvailable(ctx context.Context, username string) (id.UserID, error) {
	user, err := s.ParseNewLocalpart(username)
	if err != nil {
		return "", err
	}
	_, err = s.st.Accounts.Account(ctx, user)
	switch {
	case err == nil:
		return "", mxerr.UserInUse
	case errors.Is(err, ErrNotFound):
		return user, nil
	default:
		return "", fmt.Errorf("look up %s: %w", user, err)
	}
}

// Available handles GET /register/available.
func (s *Service) Available(ctx context.Context, username string) error {
	if username == "" {
		return mxerr.MissingParam.Msg("Missing username")
	}
	_, err := s.checkAvailable(ctx, username)
	return err
}
