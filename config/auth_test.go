package config

import (
	"errors"
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
				LocalpartTemplate: "{{.x", Icon: "https://icon"}}
		}, []string{"used twice", "providers[kc].name", "issuer", "client_id", "must include openid",
			"localpart_template", "icon", "not an absolute URL"}},
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
