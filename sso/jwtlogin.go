package sso

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/mxerr"
)

// LoginJWT is the JWT login type, as Synapse names it (clients such as
// Element's integrations and bridges send it as is).
const LoginJWT = "org.matrix.login.jwt"

// leeway absorbs clock skew between the token's issuer and this server
// when exp and nbf are checked.
const leeway = 30 * time.Second

// JWTVerifier checks the tokens of JWT login against auth.jwt.
type JWTVerifier struct {
	cfg       config.JWT
	audiences []string
	required  []string
	static    crypto.PublicKey // the configured public key, if any
	jwks      *KeySet          // the configured JWKS, if any
	now       func() time.Time
}

// NewJWTVerifier prepares the verifier of cfg (validated by config);
// fetch loads the JWKS when cfg names one.
func NewJWTVerifier(cfg config.JWT, fetch Fetcher) (*JWTVerifier, error) {
	v := &JWTVerifier{cfg: cfg, audiences: config.SplitList(cfg.Audiences),
		required: config.SplitList(cfg.RequiredClaims), now: time.Now}
	switch {
	case cfg.PublicKey != "":
		block, _ := pem.Decode([]byte(cfg.PublicKey))
		if block == nil {
			return nil, errors.New("auth.jwt.public_key: not PEM")
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_key: %w", err)
		}
		if !keyFits(cfg.Algorithm, key) {
			return nil, fmt.Errorf("auth.jwt.public_key: a %T cannot verify %s", key, cfg.Algorithm)
		}
		v.static = key
	case cfg.JWKSURL != "":
		v.jwks = NewKeySet(cfg.JWKSURL, fetch)
	}
	return v, nil
}

// JWTIdentity is who a verified JWT names.
type JWTIdentity struct {
	Localpart   string
	DisplayName string // "" when no display name claim is configured or present
}

// errBadJWT is the answer to every refused token: the reason is in the
// message, the code is the same for all (issue #10: M_FORBIDDEN).
func errBadJWT(reason string) error {
	return mxerr.Forbidden.Msg("JWT validation failed: " + reason)
}

// Verify checks signature, algorithm, exp, nbf, iss, aud and the required
// claims, and returns the user the subject claim names.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (JWTIdentity, error) {
	if token == "" {
		return JWTIdentity{}, mxerr.Forbidden.Msg("Missing token")
	}
	opts := []jwt.ParserOption{
		// One algorithm, the configured one: "none", and an HMAC token
		// "signed" with a public key, are refused here.
		jwt.WithValidMethods([]string{v.cfg.Algorithm}),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(v.now),
	}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if len(v.audiences) > 0 {
		opts = append(opts, jwt.WithAudience(v.audiences...))
	}
	if slices.Contains(v.required, "exp") {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if slices.Contains(v.required, "nbf") {
		opts = append(opts, jwt.WithNotBeforeRequired())
	}
	var keyErr error
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		k, err := v.key(ctx, t)
		keyErr = err
		return k, err
	}, opts...)
	if err != nil {
		if errors.Is(keyErr, ErrProviderUnavailable) {
			// The JWKS could not be fetched: the server's problem, not
			// the token's.
			return JWTIdentity{}, fmt.Errorf("jwt login: %w", keyErr)
		}
		return JWTIdentity{}, errBadJWT(jwtReason(err))
	}
	for _, c := range v.required {
		if _, ok := claims[c]; !ok {
			return JWTIdentity{}, errBadJWT("missing claim " + c)
		}
	}
	sub, _ := claims[v.cfg.SubjectClaim].(string)
	if sub == "" {
		return JWTIdentity{}, errBadJWT("missing claim " + v.cfg.SubjectClaim)
	}
	id := JWTIdentity{Localpart: sub}
	if v.cfg.DisplayNameClaim != "" {
		id.DisplayName, _ = claims[v.cfg.DisplayNameClaim].(string)
	}
	return id, nil
}

var errKeyMismatch = errors.New("sso: key does not fit the algorithm")

// key is the jwt.Keyfunc: the secret, the configured public key, or the
// JWKS key named by the token's kid.
func (v *JWTVerifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg != v.cfg.Algorithm { // WithValidMethods checks it too; belt and braces
		return nil, errKeyMismatch
	}
	if strings.HasPrefix(alg, "HS") {
		return []byte(v.cfg.Secret), nil
	}
	if v.static != nil {
		return v.static, nil
	}
	if v.jwks == nil {
		return nil, errKeyMismatch
	}
	kid, _ := t.Header["kid"].(string)
	return v.jwks.Key(ctx, kid, alg)
}

// jwtReason turns golang-jwt's error into a short reason for the client.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim is missing"
	case errors.Is(err, ErrUnknownKey):
		return "unknown signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature or algorithm not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	}
	return "invalid token"
}

// VerifyLoginJWT implements users.JWTVerifier.
func (v *JWTVerifier) VerifyLoginJWT(ctx context.Context, token string) (string, string, error) {
	id, err := v.Verify(ctx, token)
	return id.Localpart, id.DisplayName, err
}
