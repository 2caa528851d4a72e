package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/users"
)

// CallbackPath is where providers send the browser back; Synapse's path,
// so that a provider registration made for Synapse keeps working.
const CallbackPath = "/_synapse/client/oidc/callback"

// flowLifetime bounds the time a person may spend at the provider.
const flowLifetime = 10 * time.Minute

// Errors of the flow the edge answers specially.
var (
	// ErrUnknownProvider: no provider has the idp id (404 M_NOT_FOUND).
	ErrUnknownProvider = errors.New("sso: unknown identity provider")
	// ErrChooseProvider: several providers and none chosen; the edge
	// shows a page to pick one.
	ErrChooseProvider = errors.New("sso: choose an identity provider")
)

// Config is what the Service needs from auth.oidc.
type Config struct {
	Providers           []config.OIDCProvider
	AllowedRedirectURLs []string
	// CallbackURL returns the absolute URL of CallbackPath on this server,
	// as registered at the providers (a function: the listener's port may
	// be known only once it is bound).
	CallbackURL func() string
}

// IdentityProvider is one entry of m.login.sso's identity_providers.
type IdentityProvider struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Icon  string `json:"icon,omitempty"`
	Brand string `json:"brand,omitempty"`
}

// Service runs single sign-on through the configured providers.
type Service struct {
	providers map[string]*provider
	mappings  map[string]*mapping
	order     []IdentityProvider
	allowed   []*url.URL
	callback  func() string
	store     Store
	accounts  Accounts
	log       *slog.Logger
	now       func() time.Time
}

// New builds the Service of cfg (validated by config).
func New(cfg Config, fetch Fetcher, store Store, accounts Accounts, log *slog.Logger) (*Service, error) {
	s := &Service{providers: map[string]*provider{}, mappings: map[string]*mapping{}, callback: cfg.CallbackURL,
		store: store, accounts: accounts, log: log, now: time.Now}
	for _, pc := range cfg.Providers {
		p := newProvider(pc, fetch)
		m, err := newMapping(p.cfg.SubjectClaim, p.cfg.LocalpartTemplate, p.cfg.DisplayNameTemplate)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", pc.ID, err)
		}
		if m.required, err = pc.ClaimRequirements(); err != nil {
			return nil, fmt.Errorf("provider %s: required_claim_values: %w", pc.ID, err)
		}
		s.providers[pc.ID], s.mappings[pc.ID] = p, m
		s.order = append(s.order, IdentityProvider{ID: pc.ID, Name: pc.Name, Icon: pc.Icon, Brand: pc.Brand})
	}
	for _, raw := range cfg.AllowedRedirectURLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("allowed redirect URL %q: %w", raw, err)
		}
		s.allowed = append(s.allowed, u)
	}
	return s, nil
}

// IdentityProviders lists the providers in configuration order.
func (s *Service) IdentityProviders() []IdentityProvider { return s.order }

// ProvidersFor lists the providers user can re-authenticate with (those
// with a linked identity), in configuration order; every provider when
// user has none linked, so that the page still offers a way.
func (s *Service) ProvidersFor(ctx context.Context, user id.UserID) ([]IdentityProvider, error) {
	linked, err := s.store.LinkedProviders(ctx, user)
	if err != nil {
		return nil, err
	}
	var out []IdentityProvider
	for _, p := range s.order {
		if slices.Contains(linked, p.ID) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return s.order, nil
	}
	return out, nil
}

// Start is the beginning of a flow: where to send the browser, and the
// state the edge also puts in a cookie (spec: "guard against unsolicited
// authentication attempts").
type Start struct {
	AuthorizeURL string
	State        string
}

// StartLogin handles GET /login/sso/redirect[/{idpId}]: the client's
// redirectUrl must be an allowed one, since the login token goes there.
func (s *Service) StartLogin(ctx context.Context, idp, redirectURL string) (Start, error) {
	if redirectURL == "" {
		return Start{}, mxerr.MissingParam.Msg("Missing redirectUrl")
	}
	if !s.RedirectAllowed(redirectURL) {
		return Start{}, mxerr.Forbidden.Msg("redirectUrl is not a client this server hands login tokens to")
	}
	return s.start(ctx, idp, Flow{RedirectURL: redirectURL})
}

// StartUIA starts the flow that completes the m.login.sso stage of a
// user-interactive auth session of an authenticated user.
func (s *Service) StartUIA(ctx context.Context, idp, session string) (Start, error) {
	if session == "" {
		return Start{}, mxerr.MissingParam.Msg("Missing session")
	}
	op, user, err := s.accounts.UIASessionInfo(ctx, session)
	if err != nil {
		return Start{}, err
	}
	if user == "" || op == users.OpRegister {
		return Start{}, mxerr.Forbidden.Msg("This session does not take single sign-on")
	}
	return s.start(ctx, idp, Flow{UIASession: session})
}

func (s *Service) start(ctx context.Context, idp string, f Flow) (Start, error) {
	if idp == "" {
		if len(s.order) != 1 {
			return Start{}, ErrChooseProvider
		}
		idp = s.order[0].ID
	}
	p, ok := s.providers[idp]
	if !ok {
		return Start{}, ErrUnknownProvider
	}
	state, nonce, verifier := random(), random(), random()
	f.StateHash, f.Provider, f.Nonce, f.CodeVerifier = sha256.Sum256([]byte(state)), idp, nonce, verifier
	f.ExpiresAt = s.now().Add(flowLifetime)
	authURL, err := p.authorizeURL(ctx, s.callback(), state, nonce, verifier)
	if err != nil {
		return Start{}, err
	}
	if err := s.store.CreateFlow(ctx, f); err != nil {
		return Start{}, fmt.Errorf("store sso flow: %w", err)
	}
	return Start{AuthorizeURL: authURL, State: state}, nil
}

// Callback is the query of the provider's redirect back to us.
type Callback struct {
	State, Code        string
	Error, Description string // the provider's error, if it refused
	// CookieState is the state cookie the browser presented.
	CookieState string
}

// Result is the outcome of a callback: a login goes on to RedirectURL
// (the client's, with loginToken), a UIA stage is done.
type Result struct {
	RedirectURL string
	UIADone     bool
	UserID      id.UserID
}

var errUnsolicited = mxerr.Forbidden.Msg("Unknown, expired or unsolicited single sign-on response; start again from your client")

// HandleCallback handles GET /_synapse/client/oidc/callback: it checks
// that this browser started this flow, consumes the flow (a state works
// once), exchanges the code with the PKCE verifier, verifies the ID
// token, maps it to an account (created or linked on first login) and
// finishes the login or the UIA stage.
func (s *Service) HandleCallback(ctx context.Context, cb Callback) (Result, error) {
	if cb.State == "" || cb.CookieState == "" || cb.State != cb.CookieState {
		return Result{}, errUnsolicited
	}
	f, err := s.store.ConsumeFlow(ctx, sha256.Sum256([]byte(cb.State)), s.now())
	if errors.Is(err, ErrNotFound) {
		return Result{}, errUnsolicited
	}
	if err != nil {
		return Result{}, fmt.Errorf("consume sso flow: %w", err)
	}
	p, ok := s.providers[f.Provider]
	if !ok {
		return Result{}, errUnsolicited // the provider was removed from the configuration meanwhile
	}
	if cb.Error != "" {
		// The description is the provider's free text: logged, not shown
		// on a page of this server.
		s.log.InfoContext(ctx, "sso: the provider refused", slog.String("idp", f.Provider),
			slog.String("error", cb.Error), slog.String("description", cb.Description))
		return Result{}, mxerr.Forbidden.Msgf("The identity provider refused: %s", cb.Error)
	}
	if cb.Code == "" {
		return Result{}, mxerr.MissingParam.Msg("Missing code")
	}
	claims, err := p.exchange(ctx, s.callback(), cb.Code, f.CodeVerifier, f.Nonce)
	if errors.Is(err, errIDToken) {
		s.log.WarnContext(ctx, "sso: refused", slog.String("idp", f.Provider), slog.String("error", err.Error()))
		return Result{}, mxerr.Forbidden.Msg("The identity provider's answer could not be verified")
	}
	if err != nil {
		return Result{}, err
	}
	m := s.mappings[f.Provider]
	subject, localpart, display, ok := m.apply(claims)
	if !ok {
		return Result{}, mxerr.Forbidden.Msgf("The ID token has no %s claim", p.cfg.SubjectClaim)
	}
	if !m.allowed(claims) {
		return Result{}, mxerr.Forbidden.Msg("Your account at the identity provider may not sign in to this server")
	}
	if f.UIASession != "" {
		user, err := s.store.ExternalUser(ctx, f.Provider, subject)
		if errors.Is(err, ErrNotFound) {
			return Result{}, mxerr.Forbidden.Msg("This identity is not linked to the account being confirmed")
		}
		if err != nil {
			return Result{}, err
		}
		if err := s.accounts.CompleteSSOStage(ctx, f.UIASession, user); err != nil {
			return Result{}, err
		}
		return Result{UIADone: true, UserID: user}, nil
	}
	user, err := s.resolve(ctx, p, subject, localpart, display)
	if err != nil {
		return Result{}, err
	}
	token, err := s.accounts.IssueLoginToken(ctx, user)
	if err != nil {
		return Result{}, err
	}
	return Result{RedirectURL: withLoginToken(f.RedirectURL, token), UserID: user}, nil
}

// maxCollisions bounds the numbers tried after a taken localpart.
const maxCollisions = 100

// resolve returns the account of subject at p: the linked one, or on first
// login an existing account (allow_existing_users) or a new one, at the
// mapped localpart or the first free localpart1, localpart2, ….
func (s *Service) resolve(ctx context.Context, p *provider, subject, localpart, display string) (id.UserID, error) {
	user, err := s.store.ExternalUser(ctx, p.cfg.ID, subject)
	if err == nil {
		return s.usable(ctx, user)
	}
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	if _, err := s.accounts.ParseNewLocalpart(localpart); err != nil {
		localpart = "user" // nothing usable came out of the claims
	}
	for i := 0; i < maxCollisions; i++ {
		candidate := localpart
		if i > 0 {
			candidate += strconv.Itoa(i)
		}
		u, err := s.accounts.ParseNewLocalpart(candidate)
		if err != nil {
			return "", mxerr.Forbidden.Msg("No valid user name can be made of this identity")
		}
		exists, deactivated, err := s.accounts.AccountState(ctx, u)
		if err != nil {
			return "", err
		}
		if exists {
			if i == 0 && p.cfg.AllowExistingUsers && !deactivated {
				return s.link(ctx, p, subject, u)
			}
			continue
		}
		name := display
		if name == "" {
			name = u.Localpart()
		}
		err = s.store.CreateLinkedAccount(ctx, users.Account{UserID: u, CreatedAt: s.now(), DisplayName: name}, p.cfg.ID, subject)
		switch {
		case errors.Is(err, users.ErrExists):
			continue // the user id was taken meanwhile
		case errors.Is(err, ErrExists):
			// A concurrent first login of this identity won.
			linked, err := s.store.ExternalUser(ctx, p.cfg.ID, subject)
			if err != nil {
				return "", err
			}
			return s.usable(ctx, linked)
		case err != nil:
			return "", err
		}
		return u, nil
	}
	return "", mxerr.Forbidden.Msg("Every user name this identity maps to is taken")
}

// link records the identity; when a concurrent first login of the same
// identity linked it first, that account wins.
func (s *Service) link(ctx context.Context, p *provider, subject string, user id.UserID) (id.UserID, error) {
	err := s.store.LinkExternalID(ctx, p.cfg.ID, subject, user, s.now())
	if errors.Is(err, ErrExists) {
		linked, err := s.store.ExternalUser(ctx, p.cfg.ID, subject)
		if err != nil {
			return "", err
		}
		return s.usable(ctx, linked)
	}
	if err != nil {
		return "", err
	}
	return user, nil
}

func (s *Service) usable(ctx context.Context, user id.UserID) (id.UserID, error) {
	_, deactivated, err := s.accounts.AccountState(ctx, user)
	if err != nil {
		return "", err
	}
	if deactivated {
		return "", mxerr.UserDeactivated
	}
	return user, nil
}

// RedirectAllowed reports whether raw may receive a login token: its
// scheme and host equal an allowed entry's and its path lies under the
// entry's path. Paths with dot segments and URLs with user info or
// backslashes are refused outright (browsers resolve them differently).
func (s *Service) RedirectAllowed(raw string) bool {
	if strings.ContainsAny(raw, "\\\x00\r\n\t ") {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.User != nil || u.Opaque != "" {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, a := range s.allowed {
		if !strings.EqualFold(a.Scheme, u.Scheme) || !strings.EqualFold(a.Host, u.Host) {
			continue
		}
		prefix := strings.TrimSuffix(a.Path, "/")
		if u.Path == a.Path || u.Path == prefix || strings.HasPrefix(u.Path, prefix+"/") {
			return true
		}
	}
	return false
}

// withLoginToken adds loginToken to the client's URL, replacing any the URL
// had (spec: "Handling the callback from the Authentication server").
func withLoginToken(raw, token string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Del("loginToken")
	q.Set("loginToken", token)
	u.RawQuery = q.Encode()
	return u.String()
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
