// Package clientapi is the Client-Server API edge: the chi router, request
// decoding and error encoding, authentication middleware, and one file of
// handlers per endpoint group. Handlers are thin: decode, call the domain,
// encode. It must not talk to Postgres itself; the domain packages and the
// stores they declare do.
package clientapi

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/accountdata"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ephemeral"
	"github.com/parleyhq/parley/httpmetrics"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/sso"
	"github.com/parleyhq/parley/syncer"
	"github.com/parleyhq/parley/users"
)

// Deps is everything the Client-Server API needs, built by app.
type Deps struct {
	Config  *config.Config
	Logger  *slog.Logger
	Metrics *httpmetrics.Metrics
	// Ready reports whether the server can serve requests (migrations done,
	// database answering); it backs GET /health.
	Ready func(r *http.Request) error
	// Users is the accounts domain (registration, login, devices, UIA).
	Users *users.Service
	// Media is the content repository.
	Media *media.Service
	// Rooms is the room domain (rooms, events, membership, aliases).
	Rooms *rooms.Service
	// Profiles is the profile domain (profiles, the user directory).
	Profiles *profiles.Service
	// Sync is the sync engine (filters, /sync).
	Sync *syncer.Service
	// Typing is the in-memory typing state.
	Typing *ephemeral.Typing
	// Receipts are read receipts and read markers.
	Receipts *ephemeral.Receipts
	// Presence is the users' presence; any authenticated request is
	// activity.
	Presence *presence.Service
	// AccountData is the users' account data, tags and ignore lists.
	AccountData *accountdata.Service
	// Keys is end-to-end encryption: keys, to-device messages, key backup.
	Keys *keys.Service
	// SSO is single sign-on through OpenID Connect providers; nil when
	// none is configured.
	SSO *sso.Service
}

// API serves the Client-Server API.
type API struct {
	Deps
	router chi.Router
	ws     *wsHub // the WebSocket transport's connections (ws.go)
	// longPolls holds the parked long-polls (longpoll.go).
	longPolls longPollHub
}

// New builds the API and its routes.
func New(deps Deps) *API {
	a := &API{Deps: deps}
	r := chi.NewRouter()
	r.Use(a.recoverPanics, a.observe, a.cors)
	r.NotFound(a.unrecognized(http.StatusNotFound))
	r.MethodNotAllowed(a.unrecognized(http.StatusMethodNotAllowed))
	a.routes(r)
	a.router = r
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.router.ServeHTTP(w, r)
}

// routes mounts every endpoint group.
func (a *API) routes(r chi.Router) {
	r.Get("/health", a.health)
	a.mountDiscovery(r)
	a.mountAccounts(r)
	a.mountMedia(r)
	a.mountSync(r)
	a.mountWebSocket(r)
	a.mountRooms(r)
	a.mountProfiles(r)
	a.mountEphemeral(r)
	a.mountKeys(r)
	a.mountSSO(r)
}
