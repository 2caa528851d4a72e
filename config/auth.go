package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Auth configures how people sign in besides registration (issue #10):
// passwords, JWT login (org.matrix.login.jwt) and single sign-on through
// OpenID Connect providers (m.login.sso).
type Auth struct {
	Password AuthPassword `yaml:"password"`
	JWT      JWT          `yaml:"jwt"`
	OIDC     OIDC         `yaml:"oidc"`
	// AllowPrivateAddresses lets the server fetch OIDC discovery documents,
	// JWKS and token endpoints at loopback, private and link-local
	// addresses (tests, an identity provider on the same network). Off,
	// such connections are refused after DNS resolution.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
}

// AuthPassword switches password login.
type AuthPassword struct {
	// Enabled offers m.login.password at /login and in user-interactive
	// auth, and lets users set a password. Off, an organisation signs its
	// people in only through its identity provider.
	Enabled bool `yaml:"enabled"`
}

// JWT configures the org.matrix.login.jwt login type (as Synapse offers
// it): the client posts a JWT signed by a party the server trusts.
type JWT struct {
	Enabled bool `yaml:"enabled"`
	// Algorithm is the only algorithm accepted: HS256, HS384, HS512,
	// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or
	// EdDSA. Tokens naming another (none included) are refused.
	Algorithm string `yaml:"algorithm"`
	// Secret is the shared secret of the HS* algorithms.
	Secret string `yaml:"secret"`
	// PublicKey is the PEM public key of the other algorithms; JWKSURL is
	// the alternative (keys by kid, refreshed when a token names an
	// unknown kid).
	PublicKey string `yaml:"public_key"`
	JWKSURL   string `yaml:"jwks_url"`
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audiences, comma separated, when set: the token's aud must contain
	// one of them.
	Audiences string `yaml:"audiences"`
	// RequiredClaims, comma separated, must be present (exp, nbf, iat,
	// iss, aud, …). exp and nbf are checked whenever present.
	RequiredClaims string `yaml:"required_claims"`
	// SubjectClaim names the claim holding the user's localpart.
	SubjectClaim string `yaml:"subject_claim"`
	// DisplayNameClaim, when set, names the claim holding a new account's
	// display name.
	DisplayNameClaim string `yaml:"display_name_claim"`
	// AllowRegistration creates the account on its first login; off, a
	// token naming an unknown user is refused with M_FORBIDDEN.
	AllowRegistration bool `yaml:"allow_registration"`
}

// OIDC configures single sign-on through OpenID Connect providers.
type OIDC struct {
	// Providers are offered as the identity_providers of m.login.sso.
	Providers []OIDCProvider `yaml:"providers"`
	// AllowedRedirectURLs, comma separated, are the clients a login token
	// may be handed to: a redirectUrl is accepted when its scheme and host
	// equal an entry's and its path starts with the entry's path.
	AllowedRedirectURLs string `yaml:"allowed_redirect_urls"`
}

// OIDCProvider is one OpenID Connect identity provider. The callback URL
// to register at the provider is <client base URL>/_synapse/client/oidc/callback
// (the path Synapse uses, so an existing registration keeps working).
type OIDCProvider struct {
	// ID is the idp id clients see (letters, digits, -._~, up to 255).
	ID string `yaml:"id"`
	// Name is the button label clients show; Icon an optional mxc:// URI.
	Name string `yaml:"name"`
	Icon string `yaml:"icon"`
	// Brand lets clients show a provider's own button (spec: the
	// identity_providers brand, for example google, github, apple,
	// gitlab); empty for an organisation's own provider.
	Brand string `yaml:"brand"`
	// Issuer is the provider's issuer URL; its discovery document is
	// <issuer>/.well-known/openid-configuration.
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes, space separated, must include openid.
	Scopes string `yaml:"scopes"`
	// SubjectClaim identifies the user at the provider (default sub).
	SubjectClaim string `yaml:"subject_claim"`
	// LocalpartTemplate and DisplayNameTemplate are Go text/templates over
	// the ID token's claims, for example {{.preferred_username}} or
	// {{.email | localpart}} (ClaimTemplateFuncs). The
	// localpart is lower-cased and mapped to the user id grammar; a taken
	// one gets a number appended.
	LocalpartTemplate   string `yaml:"localpart_template"`
	DisplayNameTemplate string `yaml:"display_name_template"`
	// AllowExistingUsers links a first login to an existing account with
	// the mapped localpart instead of picking another localpart.
	AllowExistingUsers bool `yaml:"allow_existing_users"`
	// Userinfo merges the claims of the provider's userinfo endpoint into
	// the ID token's before mapping, for providers whose ID tokens carry
	// little more than sub (the ID token's claims win on conflict).
	Userinfo bool `yaml:"userinfo"`
	// RequiredClaimValues, comma separated claim=value pairs, restricts who
	// may sign in: every claim must equal its value or, when it is a list,
	// contain it (for example "groups=matrix-users,email_verified=true").
	RequiredClaimValues string `yaml:"required_claim_values"`
}

// ClaimRequirements parses RequiredClaimValues into claim → value pairs.
func (p OIDCProvider) ClaimRequirements() ([][2]string, error) {
	var out [][2]string
	for _, item := range SplitList(p.RequiredClaimValues) {
		k, v, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("not a claim=value pair: %q", item)
		}
		out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out, nil
}

// ClaimTemplateFuncs are the functions the claim templates may use besides
// text/template's own: localpart (the part of an e-mail address before
// "@", for providers that only give an address) and lower.
var ClaimTemplateFuncs = template.FuncMap{
	"localpart": func(s any) string {
		str, _ := s.(string)
		local, _, _ := strings.Cut(str, "@")
		return local
	},
	"lower": func(s any) string {
		str, _ := s.(string)
		return strings.ToLower(str)
	},
}

// DefaultAuth is passwords on, JWT off, no OIDC provider.
func DefaultAuth() Auth {
	return Auth{
		Password: AuthPassword{Enabled: true},
		JWT:      JWT{Algorithm: "HS256", RequiredClaims: "exp", SubjectClaim: "sub"},
		OIDC:     OIDC{Providers: []OIDCProvider{}},
	}
}

// WithDefaults returns the provider with its empty optional keys filled.
func (p OIDCProvider) WithDefaults() OIDCProvider {
	if p.Scopes == "" {
		p.Scopes = "openid profile"
	}
	if p.SubjectClaim == "" {
		p.SubjectClaim = "sub"
	}
	if p.LocalpartTemplate == "" {
		p.LocalpartTemplate = "{{.preferred_username}}"
	}
	if p.DisplayNameTemplate == "" {
		p.DisplayNameTemplate = "{{.name}}"
	}
	return p
}

// ProviderSecretEnv is the environment variable that sets the client
// secret of provider id: PARLEY_AUTH_OIDC_<ID>_CLIENT_SECRET, the id
// upper-cased with every character but letters and digits as "_". The
// provider list itself cannot come from the environment; its secrets can,
// so that the file holds none.
func ProviderSecretEnv(id string) string {
	b := []byte(strings.ToUpper(id))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return EnvPrefix + "AUTH_OIDC_" + string(b) + "_CLIENT_SECRET"
}

// secretsFromEnv applies ProviderSecretEnv to every provider.
func (a *Auth) secretsFromEnv(environ []string) {
	for i := range a.OIDC.Providers {
		name := ProviderSecretEnv(a.OIDC.Providers[i].ID) + "="
		for _, kv := range environ {
			if strings.HasPrefix(kv, name) {
				a.OIDC.Providers[i].ClientSecret = strings.TrimPrefix(kv, name)
			}
		}
	}
}

// SplitList splits a comma-separated key into its trimmed, non-empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// jwtAlgorithms are the algorithms JWT login accepts.
var jwtAlgorithms = map[string]bool{
	"HS256": true, "HS384": true, "HS512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// idpIDGrammar is the spec's identity provider id grammar
// (m.login.sso identity_providers: "[A-Za-z0-9_.~-]", 1–255 characters).
var idpIDGrammar = regexp.MustCompile(`^[A-Za-z0-9_.~-]{1,255}$`)

// validate adds the auth section's problems.
func (a *Auth) validate(add func(format string, args ...any)) {
	j := a.JWT
	if j.Enabled {
		switch {
		case !jwtAlgorithms[j.Algorithm]:
			add("auth.jwt.algorithm: must be one of HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA, got %q", j.Algorithm)
		case strings.HasPrefix(j.Algorithm, "HS"):
			if len(j.Secret) < 16 {
				add("auth.jwt.secret: %s needs a shared secret of at least 16 bytes", j.Algorithm)
			}
			if j.PublicKey != "" || j.JWKSURL != "" {
				add("auth.jwt: %s uses auth.jwt.secret, not a public key or JWKS URL", j.Algorithm)
			}
		default:
			if (j.PublicKey == "") == (j.JWKSURL == "") {
				add("auth.jwt: %s needs exactly one of auth.jwt.public_key and auth.jwt.jwks_url", j.Algorithm)
			}
			if j.PublicKey != "" {
				if block, _ := pem.Decode([]byte(j.PublicKey)); block == nil {
					add("auth.jwt.public_key: not a PEM block")
				} else if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
					add("auth.jwt.public_key: not a PKIX public key: %v", err)
				}
			}
			if j.JWKSURL != "" && !httpURL(j.JWKSURL) {
				add("auth.jwt.jwks_url: not an http(s) URL: %q", j.JWKSURL)
			}
			if j.Secret != "" {
				add("auth.jwt.secret: only the HS* algorithms use a shared secret")
			}
		}
		if j.SubjectClaim == "" {
			add("auth.jwt.subject_claim: must not be empty")
		}
	}
	seen := map[string]bool{}
	for i, p := range a.OIDC.Providers {
		p = p.WithDefaults()
		key := func(name string) string {
			if p.ID != "" {
				return "auth.oidc.providers[" + p.ID + "]." + name
			}
			return "auth.oidc.providers[" + strconv.Itoa(i) + "]." + name
		}
		if !idpIDGrammar.MatchString(p.ID) {
			add("%s: must be 1–255 of A-Z a-z 0-9 _ . ~ -, got %q", key("id"), p.ID)
		}
		if seen[p.ID] {
			add("%s: %q is used twice", key("id"), p.ID)
		}
		seen[p.ID] = true
		if p.Name == "" {
			add("%s: must not be empty", key("name"))
		}
		if !httpURL(p.Issuer) {
			add("%s: not an http(s) URL: %q", key("issuer"), p.Issuer)
		}
		if p.ClientID == "" {
			add("%s: must not be empty", key("client_id"))
		}
		if !containsWord(p.Scopes, "openid") {
			add("%s: must include openid", key("scopes"))
		}
		if _, err := p.ClaimRequirements(); err != nil {
			add("%s: %v", key("required_claim_values"), err)
		}
		if p.Icon != "" && !strings.HasPrefix(p.Icon, "mxc://") {
			add("%s: must be an mxc:// URI", key("icon"))
		}
		for name, text := range map[string]string{"localpart_template": p.LocalpartTemplate, "display_name_template": p.DisplayNameTemplate} {
			if _, err := template.New(name).Funcs(ClaimTemplateFuncs).Parse(text); err != nil {
				add("%s: %v", key(name), err)
			}
		}
	}
	for _, u := range SplitList(a.OIDC.AllowedRedirectURLs) {
		parsed, err := url.Parse(u)
		if err != nil || parsed.Scheme == "" || (parsed.Host == "" && parsed.Opaque == "" && parsed.Path == "") {
			add("auth.oidc.allowed_redirect_urls: not an absolute URL: %q", u)
		}
	}
	if len(a.OIDC.Providers) > 0 && len(SplitList(a.OIDC.AllowedRedirectURLs)) == 0 {
		add("auth.oidc.allowed_redirect_urls: must list the clients that may receive login tokens when providers are configured")
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func containsWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}
