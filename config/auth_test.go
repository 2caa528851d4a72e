package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestAuthValidation(t *testing.T) {
	const pemKey = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	provider := OIDCProvider{ID: "kc", Name: "Keycloak", Issuer: "https://sso.example.org/realms/x", ClientID: "parley"}
	cases := []struct {
		name   string
		mutate func(*Auth)
		want   []string // substrings of problems; none: valid
	}{
		{"defaults", func(*Auth) {}, nil},
		{"jwt hs256", func(a *Auth) { a.JWT.Enabled, a.JWT.Secret = true, "0123456789abcdef" }, nil},
		{"jwt short secret", func(a *Auth) { a.JWT.Enabled, a.JWT.Secret = true, "short" }, []string{"auth.jwt.secret"}},
		{"jwt eddsa pem", func(a *Auth) { a.JWT.Enabled, a.JWT.Algorithm, a.JWT.PublicKey = true, "EdDSA", pemKey }, nil},
		{"jwt rs256 jwks", func(a *Auth) { a.JWT.Enabled, a.JWT.Algorithm, a.JWT.JWKSURL = true, "RS256", "https://idp/jwks" }, nil},
		{"jwt rs256 nothing", func(a *Auth) { a.JWT.Enabled, a.JWT.Algorithm = true, "RS256" }, []string{"exactly one"}},
		{"jwt rs256 both", func(a *Auth) {
			a.JWT.Enabled, a.JWT.Algorithm, a.JWT.PublicKey, a.JWT.JWKSURL = true, "RS256", pemKey, "https://idp/jwks"
		}, []string{"exactly one"}},
		{"jwt none", func(a *Auth) { a.JWT.Enabled, a.JWT.Algorithm = true, "none" }, []string{"auth.jwt.algorithm"}},
		{"jwt bad pem", func(a *Auth) { a.JWT.Enabled, a.JWT.Algorithm, a.JWT.PublicKey = true, "ES256", "xyz" }, []string{"auth.jwt.public_key"}},
		{"jwt off ignores", func(a *Auth) { a.JWT.Algorithm = "none" }, nil},
		{"provider", func(a *Auth) {
			a.OIDC.Providers = []OIDCProvider{provider}
			a.OIDC.AllowedRedirectURLs = "https://app.element.io/"
		}, nil},
		{"provider without redirect list", func(a *Auth) { a.OIDC.Providers = []OIDCProvider{provider} }, []string{"allowed_redirect_urls"}},
		{"provider problems", func(a *Auth) {
			a.OIDC.AllowedRedirectURLs = "https://app.element.io/, nope"
			a.OIDC.Providers = []OIDCProvider{provider, {ID: "kc", Issuer: "ftp://x", Scopes: "profile",
				LocalpartTemplate: "{{.x", Icon: "https://icon", RequiredClaimValues: "groups"}}
		}, []string{"used twice", "providers[kc].name", "issuer", "client_id", "must include openid",
			"localpart_template", "icon", "not an absolute URL", "required_claim_values"}},
		{"bad idp id", func(a *Auth) {
			p := provider
			p.ID = "a b"
			a.OIDC.Providers, a.OIDC.AllowedRedirectURLs = []OIDCProvider{p}, "https://c/"
		}, []string{"providers[a b].id"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Defaults()
			c.mutate(&cfg.Auth)
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want problems %v", err, c.want)
			}
			all := strings.Join(ve.Problems, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no problem mentions %q:\n%s", w, all)
				}
			}
		})
	}
}

// A provider's client secret comes from the environment.
func TestProviderSecretFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/parley.yaml"
	file := "auth:\n  oidc:\n    allowed_redirect_urls: https://c/\n    providers:\n      - {id: corp-sso.1, name: Corp, issuer: https://sso.example, client_id: parley, client_secret: in-file}\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ProviderSecretEnv("corp-sso.1"); got != "PARLEY_AUTH_OIDC_CORP_SSO_1_CLIENT_SECRET" {
		t.Fatalf("env name %s", got)
	}
	cfg, err := Load(path, true, []string{"PARLEY_AUTH_OIDC_CORP_SSO_1_CLIENT_SECRET=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Auth.OIDC.Providers[0].ClientSecret; s != "from-env" {
		t.Fatalf("secret %q", s)
	}
	cfg, err = Load(path, true, nil)
	if err != nil || cfg.Auth.OIDC.Providers[0].ClientSecret != "in-file" {
		t.Fatalf("%v %+v", err, cfg)
	}
}

// A provider list in a file decodes into the typed providers.
func TestAuthProvidersFromYAML(t *testing.T) {
	cfg := Defaults()
	err := decodeYAML([]byte(`
auth:
  oidc:
    allowed_redirect_urls: "https://app.element.io/"
    providers:
      - id: kc
        name: Keycloak
        issuer: https://sso.example.org
        client_id: parley
        client_secret: s3cret
        allow_existing_users: true
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := cfg.Auth.OIDC.Providers
	if len(p) != 1 || p[0].ClientSecret != "s3cret" || !p[0].AllowExistingUsers || p[0].WithDefaults().Scopes != "openid profile" {
		t.Fatalf("providers = %+v", p)
	}
}
