package clientapi

import (
	"net"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// specVersions are the Client-Server API versions Parley advertises. Each
// endpoint Parley serves follows the v1.19 definition; endpoints it does not
// serve yet answer M_UNRECOGNIZED, which clients of every listed version
// handle.
var specVersions = []string{
	"v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
	"v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16", "v1.17", "v1.18", "v1.19",
}

// unstableFeatures lists only features that are implemented.
var unstableFeatures = map[string]bool{
	// Dehydrated devices (clientapi/dehydrated.go).
	"org.matrix.msc3814": true,
}

func (a *API) mountDiscovery(r chi.Router) {
	r.Get("/_matrix/client/versions", a.versions)
	r.Get("/.well-known/matrix/client", a.wellKnownClient)
	r.Get("/.well-known/matrix/server", a.wellKnownServer)
	r.Get("/_matrix/client/v3/capabilities", a.capabilities)
	r.Get("/_matrix/client/r0/capabilities", a.capabilities)
}

// versions handles GET /_matrix/client/versions.
func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"versions":          specVersions,
		"unstable_features": unstableFeatures,
	})
}

// wellKnownClient handles GET /.well-known/matrix/client.
func (a *API) wellKnownClient(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"m.homeserver": map[string]string{"base_url": a.clientBaseURL()},
	})
}

// clientBaseURL is the configured base URL, or one derived from the
// client listener (a wildcard address becomes the server name's host).
func (a *API) clientBaseURL() string {
	if u := a.Config.WellKnown.ClientBaseURL; u != "" {
		return strings.TrimSuffix(u, "/")
	}
	host, port, err := net.SplitHostPort(a.Config.Listen.Client)
	if err != nil {
		return "http://" + a.Config.Listen.Client
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = string(a.Config.ServerName)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// wellKnownServer handles GET /.well-known/matrix/server: the delegation
// target when one is configured, 404 otherwise (peers then use the server
// name itself, spec "Resolving server names").
func (a *API) wellKnownServer(w http.ResponseWriter, r *http.Request) {
	if a.Config.WellKnown.Server == "" {
		writeMatrixError(w, mxerr.NotFound.Msg("no server delegation is configured"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"m.server": a.Config.WellKnown.Server})
}

// capabilities handles GET /_matrix/client/v3/capabilities.
func (a *API) capabilities(w http.ResponseWriter, r *http.Request) {
	available := map[string]string{}
	for _, v := range roomversion.All() {
		stability := "unstable"
		if v.Stable {
			stability = "stable"
		}
		available[string(v.ID)] = stability
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"capabilities": map[string]any{
			// Off with auth.password.enabled: false (issue #10).
			"m.change_password": map[string]bool{"enabled": a.Config.Auth.Password.Enabled},
			"m.room_versions": map[string]any{
				"default":   roomversion.Default,
				"available": available,
			},
			"m.3pid_changes":    map[string]bool{"enabled": false},
			"m.get_login_token": map[string]bool{"enabled": true},

			// Profiles (client-server API v1.16: m.profile_fields; the two
			// older capabilities for clients that predate it).
			"m.set_displayname": map[string]bool{"enabled": true},
			"m.set_avatar_url":  map[string]bool{"enabled": true},
			"m.profile_fields":  map[string]bool{"enabled": true},
		},
	})
}

// health handles GET /health: 200 once migrations are done and the
// database answers, 503 otherwise, so that load balancers and orchestrators
// route only to ready nodes.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	if a.Ready != nil {
		if err := a.Ready(r); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("OK\n"))
}
