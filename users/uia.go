package users

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Operations protected by user-interactive auth. A session belongs to one
// operation (and, for account operations, one user) and cannot be replayed
// against another.
const (
	OpRegister      = "register"
	OpPassword      = "account.password"
	OpDeactivate    = "account.deactivate"
	OpDeleteDevices = "devices.delete"
	OpGetLoginToken = "login.get_token"
)

// Auth types (spec: "Authentication types").
const (
	StagePassword          = "m.login.password"
	StageDummy             = "m.login.dummy"
	StageRegistrationToken = "m.login.registration_token"
)

// Flow is one sequence of stages that completes an operation.
type Flow struct {
	Stages []string `json:"stages"`
}

// Identifier is a user identifier object (spec: "Identifier types"). Only
// m.id.user is supported; the others are decoded to be refused clearly.
type Identifier struct {
	Type    string `json:"type"`
	User    string `json:"user,omitempty"`
	Medium  string `json:"medium,omitempty"`
	Address string `json:"address,omitempty"`
	Country string `json:"country,omitempty"`
	Phone   string `json:"phone,omitempty"`
}

// AuthData is the "auth" object of a UIA-protected request.
type AuthData struct {
	Type       string      `json:"type,omitempty"`
	Session    string      `json:"session,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	User       string      `json:"user,omitempty"` // legacy m.login.password field
	Password   string      `json:"password,omitempty"`
	Token      string      `json:"token,omitempty"`
}

// UIARequired is the answer while authentication is not complete: the
// edge sends Body() with status 401 (spec: "User-interactive API in the
// REST API"). Err is set when the last stage attempt failed.
type UIARequired struct {
	Session   string
	Flows     []Flow
	Params    map[string]any
	Completed []string
	Err       *mxerr.Error
}

func (e *UIARequired) Error() string {
	if e.Err != nil {
		return "user-interactive auth required: " + e.Err.Error()
	}
	return "user-interactive auth required"
}

// Body is the JSON body of the 401 response.
func (e *UIARequired) Body() map[string]any {
	body := map[string]any{"session": e.Session, "flows": e.Flows, "params": e.Params}
	if e.Params == nil {
		body["params"] = map[string]any{}
	}
	if len(e.Completed) > 0 {
		body["completed"] = e.Completed
	}
	if e.Err != nil {
		body["errcode"] = e.Err.Code
		body["error"] = e.Err.Message
	}
	return body
}

// UIADone is the proof that a request passed user-interactive auth; the
// operation calls finishUIA once it has succeeded.
type UIADone struct {
	session           string
	registrationToken string
}

// flows returns the flows offered for op to owner ("" for registration).
// Account operations ask for the password when passwords are on and the
// user has one, and for single sign-on when an identity provider is
// configured (spec: "SSO during User-Interactive Authentication").
func (s *Service) flows(ctx context.Context, op string, owner id.UserID) ([]Flow, error) {
	if op == OpRegister {
		if s.cfg.RegistrationMode == "token" {
			return []Flow{{Stages: []string{StageRegistrationToken}}}, nil
		}
		return []Flow{{Stages: []string{StageDummy}}}, nil
	}
	var flows []Flow
	if !s.cfg.PasswordDisabled {
		hasPassword := true
		if s.cfg.SSO && owner != "" {
			acc, err := s.st.Accounts.Account(ctx, owner)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("load account: %w", err)
			}
			hasPassword = acc.PasswordHash != ""
		}
		if hasPassword {
			flows = append(flows, Flow{Stages: []string{StagePassword}})
		}
	}
	if s.cfg.SSO {
		flows = append(flows, Flow{Stages: []string{StageSSO}})
	}
	if len(flows) == 0 {
		// Neither passwords nor an identity provider (JWT-only accounts):
		// the password stage is offered and fails, as nothing else can
		// prove the user's presence.
		flows = []Flow{{Stages: []string{StagePassword}}}
	}
	return flows, nil
}

// checkUIA runs one round of user-interactive auth for op. requester is
// the authenticated user for account operations and nil for registration.
// It returns UIADone when a flow is complete, a *UIARequired when more is
// needed, or another error when the request itself is wrong.
func (s *Service) checkUIA(ctx context.Context, op string, requester *Requester, auth *AuthData) (UIADone, error) {
	var owner id.UserID
	if requester != nil {
		owner = requester.UserID
	}
	flows, err := s.flows(ctx, op, owner)
	if err != nil {
		return UIADone{}, err
	}
	if auth == nil || auth.Session == "" {
		sess, err := s.newUIASession(ctx, op, owner)
		if err != nil {
			return UIADone{}, err
		}
		if auth == nil || auth.Type == "" {
			// A request never succeeds without auth, even when the only
			// stage is m.login.dummy.
			return UIADone{}, &UIARequired{Session: sess.ID, Flows: flows}
		}
		auth.Session = sess.ID
	}
	sess, err := s.st.UIA.UIASession(ctx, auth.Session, s.now())
	if errors.Is(err, ErrNotFound) {
		return UIADone{}, mxerr.Unknown.WithStatus(400).Msg("Unknown or expired UIA session")
	}
	if err != nil {
		return UIADone{}, fmt.Errorf("load uia session: %w", err)
	}
	if sess.Operation != op || sess.UserID != owner {
		return UIADone{}, mxerr.Forbidden.Msg("The UIA session belongs to another request")
	}
	required := func(e *mxerr.Error) *UIARequired {
		return &UIARequired{Session: sess.ID, Flows: flows, Completed: sess.Completed, Err: e}
	}
	if auth.Type != "" && !slices.Contains(sess.Completed, auth.Type) {
		if !nextStageAllowed(flows, sess.Completed, auth.Type) {
			return UIADone{}, required(mxerr.Forbidden.Msgf("Stage %s is not expected now", auth.Type))
		}
		regToken, stageErr, err := s.runStage(ctx, requester, auth)
		if err != nil {
			return UIADone{}, err
		}
		if stageErr != nil {
			return UIADone{}, required(stageErr)
		}
		if err := s.st.UIA.CompleteUIAStage(ctx, sess.ID, auth.Type, regToken); err != nil {
			return UIADone{}, err
		}
		sess.Completed = append(sess.Completed, auth.Type)
		if regToken != "" {
			sess.RegistrationToken = regToken
		}
	}
	for _, f := range flows {
		if slices.Equal(f.Stages, sess.Completed) {
			return UIADone{session: sess.ID, registrationToken: sess.RegistrationToken}, nil
		}
	}
	return UIADone{}, required(nil)
}

// nextStageAllowed reports whether some flow starts with the completed
// stages and continues with stage (flows are completed in order).
func nextStageAllowed(flows []Flow, completed []string, stage string) bool {
	for _, f := range flows {
		n := len(completed)
		if n < len(f.Stages) && slices.Equal(f.Stages[:n], completed) && f.Stages[n] == stage {
			return true
		}
	}
	return false
}

// runStage checks one stage's credentials. A failure the client may retry
// is stageErr; err is reserved for failures of the server.
func (s *Service) runStage(ctx context.Context, requester *Requester, auth *AuthData) (regToken string, stageErr *mxerr.Error, err error) {
	switch auth.Type {
	case StageDummy:
		return "", nil, nil
	case StageSSO:
		// Completed by the identity provider's callback, never by the
		// request itself.
		return "", mxerr.Forbidden.Msg("Complete single sign-on in a browser at /_matrix/client/v3/auth/m.login.sso/fallback/web"), nil
	case StagePassword:
		if s.cfg.PasswordDisabled {
			return "", errPasswordsOff, nil
		}
		if requester == nil {
			return "", mxerr.Forbidden.Msg("Password stage needs an authenticated user"), nil
		}
		user, e := s.identify(auth.Identifier, auth.User)
		if e != nil {
			return "", e, nil
		}
		// Password guessing through UIA costs the same bucket as /login.
		if err := s.AllowLogin("", requester.UserID); err != nil {
			return "", nil, err
		}
		// The stage proves the requester's own password, not anybody's.
		if user != requester.UserID {
			return "", mxerr.Forbidden.Msg("Invalid username or password"), nil
		}
		if _, err := s.checkPassword(ctx, user, auth.Password); err != nil {
			if m, ok := mxerr.As(err); ok {
				return "", m, nil
			}
			return "", nil, err
		}
		return "", nil, nil
	case StageRegistrationToken:
		if !validRegistrationToken(auth.Token) {
			return "", mxerr.Unauthorized.Msg("Invalid registration token"), nil
		}
		err := s.st.RegistrationTokens.ReserveRegistrationToken(ctx, auth.Token, s.now())
		if errors.Is(err, ErrNotFound) {
			return "", mxerr.Unauthorized.Msg("Invalid registration token"), nil
		}
		if err != nil {
			return "", nil, err
		}
		return auth.Token, nil, nil
	}
	return "", mxerr.Forbidden.Msgf("Unsupported auth type %q", auth.Type), nil
}

func (s *Service) newUIASession(ctx context.Context, op string, owner id.UserID) (UIASession, error) {
	now := s.now()
	sess := UIASession{ID: randomString(24, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"), Operation: op, UserID: owner,
		Completed: []string{}, CreatedAt: now, ExpiresAt: now.Add(s.cfg.UIASessionLifetime)}
	if err := s.st.UIA.CreateUIASession(ctx, sess); err != nil {
		return UIASession{}, fmt.Errorf("create uia session: %w", err)
	}
	return sess, nil
}

// finishUIA closes the session once the protected operation succeeded, so
// that every new operation prompts again (spec, /login/get_token: servers
// MUST always re-prompt), and turns a reserved registration token use into
// a completed one.
func (s *Service) finishUIA(ctx context.Context, done UIADone) error {
	if done.registrationToken != "" {
		if err := s.st.RegistrationTokens.CompleteRegistrationToken(ctx, done.registrationToken); err != nil {
			return err
		}
	}
	return s.st.UIA.DeleteUIASession(ctx, done.session)
}
