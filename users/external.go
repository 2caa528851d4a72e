package users

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// LoginJWT is the JWT login type (org.matrix.login.jwt, as Synapse names
// it); package sso verifies the tokens.
const LoginJWT = "org.matrix.login.jwt"

// StageSSO is the user-interactive auth stage completed through the
// identity provider in a browser (spec: "SSO during User-Interactive
// Authentication"), via /auth/m.login.sso/fallback/web.
const StageSSO = "m.login.sso"

// JWTVerifier verifies the token of a JWT login and returns the localpart
// (or full user id) it names and a display name ("" when none). Refusals
// are *mxerr.Error (M_FORBIDDEN); other errors are the server's.
type JWTVerifier interface {
	VerifyLoginJWT(ctx context.Context, token string) (user, displayName string, err error)
}

// SetJWT switches JWT login on; allowRegistration creates the accounts of
// unknown users on their first login.
func (s *Service) SetJWT(v JWTVerifier, allowRegistration bool) {
	s.jwt, s.jwtReg = v, allowRegistration
}

// JWTEnabled reports whether JWT login is on (GET /login lists it).
func (s *Service) JWTEnabled() bool { return s.jwt != nil }

// PasswordEnabled reports whether password login is on.
func (s *Service) PasswordEnabled() bool { return !s.cfg.PasswordDisabled }

var errPasswordsOff = mxerr.Forbidden.Msg("Passwords are disabled on this server; sign in with single sign-on")

// loginJWT resolves a JWT login to its user, creating the account when
// allowed.
func (s *Service) loginJWT(ctx context.Context, token string) (id.UserID, error) {
	if s.jwt == nil {
		return "", mxerr.Unknown.WithStatus(400).Msgf("Unknown login type %q", LoginJWT)
	}
	if token == "" {
		return "", mxerr.Forbidden.Msg("Missing token")
	}
	name, display, err := s.jwt.VerifyLoginJWT(ctx, token)
	if err != nil {
		if _, refused := mxerr.As(err); !refused {
			// The key source failed (JWKS unreachable): the edge answers
			// 502 without the cause, so it is logged here.
			s.log.WarnContext(ctx, "jwt login: cannot verify", slog.String("error", err.Error()))
		}
		return "", err
	}
	user, merr := s.identify(&Identifier{Type: "m.id.user", User: name}, "")
	if merr != nil {
		return "", mxerr.Forbidden.Msg("JWT validation failed: the subject is not a user of this server")
	}
	acc, err := s.st.Accounts.Account(ctx, user)
	switch {
	case err == nil:
		if acc.Deactivated {
			return "", mxerr.UserDeactivated
		}
		return user, nil
	case !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("load account: %w", err)
	case !s.jwtReg:
		return "", mxerr.Forbidden.Msg("No account for this token's user and JWT registration is off")
	}
	if _, err := s.ParseNewLocalpart(user.Localpart()); err != nil {
		return "", mxerr.Forbidden.Msg("JWT validation failed: the subject is not a valid new user name")
	}
	if err := s.CreateExternalAccount(ctx, user, display); err != nil && !errors.Is(err, ErrExists) {
		return "", err
	}
	return user, nil
}

// CreateExternalAccount creates an account without a password for a user
// an identity provider vouches for (JWT or SSO); displayName "" uses the
// localpart. ErrExists when the id is taken.
func (s *Service) CreateExternalAccount(ctx context.Context, user id.UserID, displayName string) error {
	if displayName == "" {
		displayName = user.Localpart()
	}
	acc := Account{UserID: user, CreatedAt: s.now(), DisplayName: strings.TrimSpace(displayName)}
	if err := s.st.Accounts.CreateAccount(ctx, acc, nil); err != nil {
		if errors.Is(err, ErrExists) {
			return ErrExists
		}
		return fmt.Errorf("create account %s: %w", user, err)
	}
	return nil
}

// AccountState reports whether user exists and whether it is deactivated.
func (s *Service) AccountState(ctx context.Context, user id.UserID) (exists, deactivated bool, err error) {
	acc, err := s.st.Accounts.Account(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("load account %s: %w", user, err)
	}
	return true, acc.Deactivated, nil
}

// IssueLoginToken creates a single-use m.login.token for user, stored
// hashed, that expires after the configured login token lifetime; SSO
// hands it to the client through the redirect.
func (s *Service) IssueLoginToken(ctx context.Context, user id.UserID) (string, error) {
	token := newToken(prefixLogin)
	if err := s.st.Tokens.CreateLoginToken(ctx, HashToken(token), user, s.now().Add(s.cfg.LoginTokenLifetime)); err != nil {
		return "", err
	}
	return token, nil
}

// UIASessionInfo returns the operation and the user of a pending UIA
// session, for the SSO fallback page to say what is being confirmed.
// M_UNKNOWN (400) when the session is unknown or expired.
func (s *Service) UIASessionInfo(ctx context.Context, session string) (op string, user id.UserID, err error) {
	sess, err := s.st.UIA.UIASession(ctx, session, s.now())
	if errors.Is(err, ErrNotFound) {
		return "", "", mxerr.Unknown.WithStatus(400).Msg("Unknown or expired UIA session")
	}
	if err != nil {
		return "", "", fmt.Errorf("load uia session: %w", err)
	}
	return sess.Operation, sess.UserID, nil
}

// CompleteSSOStage marks the m.login.sso stage of session done after the
// identity provider authenticated user: only the session's own user
// completes it, and only when the session's flows expect it now.
func (s *Service) CompleteSSOStage(ctx context.Context, session string, user id.UserID) error {
	sess, err := s.st.UIA.UIASession(ctx, session, s.now())
	if errors.Is(err, ErrNotFound) {
		return mxerr.Unknown.WithStatus(400).Msg("Unknown or expired UIA session")
	}
	if err != nil {
		return fmt.Errorf("load uia session: %w", err)
	}
	if sess.UserID == "" || sess.UserID != user {
		return mxerr.Forbidden.Msg("The identity provider signed in another user than the one who asked")
	}
	flows, err := s.flows(ctx, sess.Operation, sess.UserID)
	if err != nil {
		return err
	}
	if !nextStageAllowed(flows, sess.Completed, StageSSO) {
		return mxerr.Forbidden.Msg("Single sign-on is not expected now in this session")
	}
	return s.st.UIA.CompleteUIAStage(ctx, sess.ID, StageSSO, "")
}
