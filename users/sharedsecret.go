package users

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"

	"github.com/parleyhq/parley/mxerr"
)

// SharedSecretRequest is the body of POST /_synapse/admin/v1/register, the
// shared-secret registration endpoint operators' tooling knows from Synapse.
type SharedSecretRequest struct {
	Nonce       string `json:"nonce"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	DisplayName string `json:"displayname,omitempty"`
	Admin       bool   `json:"admin,omitempty"`
	UserType    string `json:"user_type,omitempty"`
	MAC         string `json:"mac"`
}

// SharedSecretEnabled reports whether registration.shared_secret is set.
func (s *Service) SharedSecretEnabled() bool { return s.cfg.SharedSecret != "" }

// NewRegistrationNonce handles GET /_synapse/admin/v1/register: a
// single-use nonce, valid for NonceLifetime.
func (s *Service) NewRegistrationNonce(ctx context.Context) (string, error) {
	nonce := randomString(32, "abcdef0123456789")
	if err := s.st.Nonces.CreateNonce(ctx, nonce, s.now().Add(s.cfg.NonceLifetime)); err != nil {
		return "", err
	}
	return nonce, nil
}

// SharedSecretMAC computes the hex HMAC-SHA1 the client sends: over
// nonce NUL username NUL password NUL "admin"|"notadmin" [NUL user_type],
// keyed with the shared secret.
func SharedSecretMAC(secret, nonce, username, password string, admin bool, userType string) string {
	m := hmac.New(sha1.New, []byte(secret))
	role := "notadmin"
	if admin {
		role = "admin"
	}
	m.Write([]byte(nonce + "\x00" + username + "\x00" + password + "\x00" + role))
	if userType != "" {
		m.Write([]byte("\x00" + userType))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// SharedSecretRegister handles POST /_synapse/admin/v1/register. The nonce
// is spent whatever the outcome, so a failed MAC cannot be retried with it.
func (s *Service) SharedSecretRegister(ctx context.Context, req SharedSecretRequest) (Session, error) {
	if !s.SharedSecretEnabled() {
		return Session{}, mxerr.Unrecognized
	}
	if req.Nonce == "" || req.Username == "" || req.MAC == "" {
		return Session{}, mxerr.MissingParam.Msg("nonce, username and mac are required")
	}
	ok, err := s.st.Nonces.ConsumeNonce(ctx, req.Nonce, s.now())
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, mxerr.Unknown.WithStatus(400).Msg("Unrecognised nonce")
	}
	got, err := hex.DecodeString(req.MAC)
	want, _ := hex.DecodeString(SharedSecretMAC(s.cfg.SharedSecret, req.Nonce, req.Username, req.Password, req.Admin, req.UserType))
	if err != nil || !hmac.Equal(got, want) {
		return Session{}, mxerr.Forbidden.Msg("HMAC incorrect")
	}
	if len(req.Password) > maxPasswordBytes {
		return Session{}, mxerr.InvalidParam.Msg("Password is too long")
	}
	user, err := s.checkAvailable(ctx, req.Username)
	if err != nil {
		return Session{}, err
	}
	res, err := s.createAccount(ctx, user, req.Password, false, req.Admin, RegisterRequest{})
	if err != nil {
		return Session{}, err
	}
	return *res.Session, nil
}
