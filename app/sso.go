package app

import (
	"net"
	"strings"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/sso"
	"github.com/parleyhq/parley/sso/oidcclient"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/users"
)

var _ sso.Accounts = (*users.Service)(nil)

// ssoTimeout bounds one request to an identity provider.
const ssoTimeout = 10 * time.Second

// usersAuthConfig is what the accounts domain takes from auth.*.
func usersAuthConfig(cfg *config.Config, c *users.Config) {
	c.PasswordDisabled = !cfg.Auth.Password.Enabled
	c.SSO = len(cfg.Auth.OIDC.Providers) > 0
}

// openSSO switches JWT login on when configured and returns the single
// sign-on service, nil without providers (issue #10). Call it once the
// users service exists; the callback URL is read when a flow starts, so
// the client listener may be bound later.
func (a *App) openSSO() (*sso.Service, error) {
	cfg := a.cfg
	fetch := oidcclient.New(cfg.Auth.AllowPrivateAddresses, ssoTimeout)
	if cfg.Auth.JWT.Enabled {
		v, err := sso.NewJWTVerifier(cfg.Auth.JWT, fetch)
		if err != nil {
			return nil, err
		}
		a.users.SetJWT(v, cfg.Auth.JWT.AllowRegistration)
	}
	if len(cfg.Auth.OIDC.Providers) == 0 {
		return nil, nil
	}
	return sso.New(sso.Config{
		Providers:           cfg.Auth.OIDC.Providers,
		AllowedRedirectURLs: config.SplitList(cfg.Auth.OIDC.AllowedRedirectURLs),
		CallbackURL:         func() string { return clientBaseURL(cfg, a.Addr("client")) + sso.CallbackPath },
	}, fetch, storage.NewSSO(a.db.Pool), a.users, a.logger)
}

// clientBaseURL is well_known.client_base_url, or the bound client
// listener's address with a wildcard host replaced by the server name (as
// /.well-known/matrix/client derives it). Behind a reverse proxy the
// operator sets client_base_url: it is the URL the providers redirect to.
func clientBaseURL(cfg *config.Config, bound string) string {
	if u := cfg.WellKnown.ClientBaseURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "http://" + bound
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = string(cfg.ServerName)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), port)
}
