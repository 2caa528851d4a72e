package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// The operations below are for operators (the parley user subcommands);
// they bypass the registration mode and user-interactive auth.

// AddUser creates an account without logging it in.
func (s *Service) AddUser(ctx context.Context, username, password string, admin bool) (id.UserID, error) {
	user, err := s.ParseNewLocalpart(username)
	if err != nil {
		return "", err
	}
	if password == "" {
		return "", mxerr.MissingParam.Msg("A password is required")
	}
	res, err := s.createAccount(ctx, user, password, false, admin, RegisterRequest{InhibitLogin: true})
	if err != nil {
		return "", err
	}
	return res.UserID, nil
}

// ListUsers returns every account, deactivated ones included.
func (s *Service) ListUsers(ctx context.Context) ([]Account, error) {
	return s.st.Accounts.Accounts(ctx)
}

// ResetPassword sets a new password and logs every device out.
func (s *Service) ResetPassword(ctx context.Context, user id.UserID, password string) error {
	if password == "" {
		return mxerr.MissingParam.Msg("A password is required")
	}
	if err := s.setPassword(ctx, user, password); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("no active account %s: %w", user, err)
		}
		return err
	}
	return s.LogoutAll(ctx, user)
}

// DeactivateUser deactivates an account.
func (s *Service) DeactivateUser(ctx context.Context, user id.UserID) error {
	return s.deactivate(ctx, user)
}

// validRegistrationToken checks the spec's token grammar: the opaque
// identifier grammar, at most 64 characters.
func validRegistrationToken(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for _, c := range []byte(t) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

// AddRegistrationToken creates a registration token; token "" draws a
// random one. usesAllowed nil means unlimited, a zero expiresAt never.
func (s *Service) AddRegistrationToken(ctx context.Context, token string, usesAllowed *int, expiresAt time.Time) (RegistrationToken, error) {
	if token == "" {
		token = randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
	}
	if !validRegistrationToken(token) {
		return RegistrationToken{}, mxerr.InvalidParam.Msg("A token is 1-64 characters of [A-Za-z0-9._~-]")
	}
	if usesAllowed != nil && *usesAllowed < 0 {
		return RegistrationToken{}, mxerr.InvalidParam.Msg("uses_allowed must not be negative")
	}
	t := RegistrationToken{Token: token, UsesAllowed: usesAllowed, ExpiresAt: expiresAt, CreatedAt: s.now()}
	if err := s.st.RegistrationTokens.CreateRegistrationToken(ctx, t); err != nil {
		if errors.Is(err, ErrExists) {
			return RegistrationToken{}, mxerr.InvalidParam.Msg("That token exists already")
		}
		return RegistrationToken{}, err
	}
	return t, nil
}

// RegistrationTokens lists the registration tokens.
func (s *Service) RegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	return s.st.RegistrationTokens.RegistrationTokens(ctx)
}

// RegistrationTokenValid handles GET
// /register/m.login.registration_token/validity: whether the token exists,
// has not expired and has uses left (pending uses count, as they may
// complete).
func (s *Service) RegistrationTokenValid(ctx context.Context, token string) (bool, error) {
	if s.cfg.RegistrationMode != "token" {
		return false, mxerr.Forbidden.Msg("Token-authenticated registration is not enabled")
	}
	if !validRegistrationToken(token) {
		return false, nil
	}
	t, err := s.st.RegistrationTokens.RegistrationToken(ctx, token)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt) {
		return false, nil
	}
	if t.UsesAllowed != nil && t.Pending+t.Completed >= *t.UsesAllowed {
		return false, nil
	}
	return true, nil
}
