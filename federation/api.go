// Package federation is the Server-Server API edge: the router of the
// federation listener, X-Matrix authentication of inbound requests, the
// key server and notary, and the handlers of every endpoint group (one
// file each). Handlers are thin: they decode, call a domain service
// declared as a small interface in their file, and encode.
//
// Subpackages: xmatrix (request signatures), keyring (server keys),
// fedclient (discovery and the outbound client), queue (outbound).
package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/httpmetrics"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// MaxRequestBytes bounds an inbound request body. The largest legitimate
// one is a transaction: 50 PDUs and 100 EDUs of at most 64 KiB each.
const MaxRequestBytes = 16 << 20

// RoomHeads reads a room's current state; storage.Rooms implements it.
type RoomHeads interface {
	Head(ctx context.Context, room id.RoomID) (*rooms.Head, error)
}

// Deps are the services behind the federation API. Each endpoint group
// adds its own field (one line, a small interface declared in its file);
// a nil service leaves its endpoints unmounted.
type Deps struct {
	Config  *config.Config
	Logger  *slog.Logger
	Keyring *keyring.Keyring
	Client  *fedclient.Client
	// Heads gives CheckServerACL the rooms' current m.room.server_acl.
	Heads RoomHeads
	// Registry receives the inbound request metrics; nil: none.
	Registry prometheus.Registerer
	// OnInboundRequest runs after each authenticated request, with its
	// origin: a server that talks to us is up, so its outbound queue can
	// retry now. It must not block.
	OnInboundRequest func(origin id.ServerName)
	// Membership is the membership handshakes and invites (joins.go).
	Membership Membership
	// Serve are the services behind the read endpoints (serve.go).
	Serve ServeDeps
	// Transactions processes PUT /send/{txnId} (send.go, transactions.go).
	Transactions *Transactions
}

// API is the federation listener's handler.
type API struct {
	d Deps
	// deps is d; both spellings are used by the endpoint files.
	deps    *Deps
	router  chi.Router
	metrics *httpmetrics.Metrics
	// bodyTimeout bounds reading an authenticated request's body.
	bodyTimeout time.Duration
}

// BodyTimeout bounds reading the body of an authenticated request.
const BodyTimeout = 60 * time.Second

// New builds the router: the key endpoints and /version without
// authentication, every other /_matrix/federation endpoint behind X-Matrix;
// unknown paths answer 404 and wrong methods 405, both M_UNRECOGNIZED.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	a := &API{d: d, metrics: httpmetrics.New(d.Registry, "federation"), bodyTimeout: BodyTimeout}
	a.deps = &a.d
	r := chi.NewRouter()
	r.Use(a.observe)
	r.NotFound(unrecognized(http.StatusNotFound))
	r.MethodNotAllowed(unrecognized(http.StatusMethodNotAllowed))
	a.keyRoutes(r)
	r.Get("/_matrix/federation/v1/version", a.version)
	r.Group(func(r chi.Router) {
		r.Use(a.authenticate)
		// Endpoint groups behind X-Matrix: one line each.
		for _, routes := range []func(chi.Router){
			a.membershipRoutes,
			a.serveRoutes,
			a.sendRoutes,
		} {
			routes(r)
		}
	})
	a.router = r
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.router.ServeHTTP(w, r) }

func (a *API) serverName() id.ServerName { return a.d.Config.ServerName }

func (a *API) logger() *slog.Logger { return a.d.Logger }

type ctxKey int

const (
	originKey ctxKey = iota
	bodyKey
)

// Origin is the authenticated server that sent the request; "" outside
// the authenticated routes.
func Origin(ctx context.Context) id.ServerName {
	o, _ := ctx.Value(originKey).(id.ServerName)
	return o
}

// WithOrigin returns ctx carrying origin as the authenticated origin (for
// tests of handlers and for code that acts on behalf of a server).
func WithOrigin(ctx context.Context, origin id.ServerName) context.Context {
	return context.WithValue(ctx, originKey, origin)
}

// body is the request body the authentication middleware read (nil
// outside the authenticated routes).
func body(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey).([]byte)
	return b
}

// authenticate verifies the X-Matrix signature of the request (server-server
// API, "Request Authentication"): a missing, malformed or unverifiable
// signature, or one for another destination, is 401 M_UNAUTHORIZED. The
// body it reads stays readable from r.Body and body(r).
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The listener is open to the internet: a body trickled in byte
		// by byte must not hold the request forever.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(a.bodyTimeout))
		content, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				a.writeError(w, r, mxerr.TooLarge.Msgf("request body is larger than %d bytes", MaxRequestBytes))
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The rest of the body will not come: close rather than
				// wait for it to keep the connection.
				w.Header().Set("Connection", "close")
				a.writeError(w, r, mxerr.Unknown.WithStatus(http.StatusRequestTimeout).Msg("request body not received in time"))
			default:
				a.writeError(w, r, mxerr.NotJSON.Msg("could not read the request body"))
			}
			return
		}
		_ = rc.SetReadDeadline(time.Time{})
		origin, err := xmatrix.Verify(r.Context(), r.Header.Values("Authorization"), a.serverName(),
			r.Method, r.RequestURI, content, a.d.Keyring.VerifyKey)
		if err != nil {
			a.logger().InfoContext(r.Context(), "federation request refused",
				slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			a.writeError(w, r, err)
			return
		}
		ctx := context.WithValue(WithOrigin(r.Context(), origin), bodyKey, content)
		r = r.WithContext(ctx)
		r.Body = io.NopCloser(bytes.NewReader(content))
		if a.d.OnInboundRequest != nil {
			a.d.OnInboundRequest(origin)
		}
		next.ServeHTTP(w, r)
	})
}

// CheckServerACL refuses origin when the room's m.room.server_acl denies
// it (server-server API, "Server Access Control Lists"): 403 M_FORBIDDEN.
// A room we do not know has no ACL to apply.
func (a *API) CheckServerACL(ctx context.Context, room id.RoomID, origin id.ServerName) error {
	if a.d.Heads == nil {
		return nil
	}
	head, err := a.d.Heads.Head(ctx, room)
	if errors.Is(err, rooms.ErrRoomNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !auth.ServerAllowed(head.State, origin) {
		return mxerr.Forbidden.Msgf("server %s is denied by the room's server ACL", origin)
	}
	return nil
}

// decodeJSON decodes the request body, one JSON object, into v, with the
// errcodes M_NOT_JSON and M_BAD_JSON (and M_TOO_LARGE on unauthenticated
// routes).
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	raw := body(r)
	if raw == nil {
		// An unauthenticated route (the notary's query): same bounds as
		// authenticate's.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(a.bodyTimeout))
		var err error
		if raw, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes)); err != nil {
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				return mxerr.TooLarge.Msgf("request body is larger than %d bytes", MaxRequestBytes)
			case errors.Is(err, os.ErrDeadlineExceeded):
				w.Header().Set("Connection", "close")
				return mxerr.Unknown.WithStatus(http.StatusRequestTimeout).Msg("request body not received in time")
			}
			return mxerr.NotJSON.Msg("could not read the request body")
		}
		_ = rc.SetReadDeadline(time.Time{})
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return mxerr.NotJSON.Msg("request body is not valid JSON")
	}
	if trimmed[0] != '{' {
		return mxerr.BadJSON.Msg("request body must be a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return mxerr.BadJSON.Msgf("field %q has the wrong type", typeErr.Field)
		}
		return mxerr.BadJSON.Msg("request body does not have the expected shape")
	}
	return nil
}

// writeJSON encodes v as the response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorTable maps domain sentinels to the Matrix error a server receives.
var errorTable = []struct {
	domain error
	matrix *mxerr.Error
}{
	{rooms.ErrRoomNotFound, mxerr.NotFound.Msg("Unknown room")},
	{rooms.ErrEventNotFound, mxerr.NotFound.Msg("Event not found")},
	{keyring.ErrTooManyServers, mxerr.LimitExceeded.WithStatus(http.StatusBadRequest).Msg("Too many servers in one key query")},
}

// writeError answers with the Matrix error for err; errors nothing maps
// become 500 M_UNKNOWN and are logged here, once.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	m, ok := mxerr.As(err)
	if !ok {
		for _, e := range errorTable {
			if errors.Is(err, e.domain) {
				m, ok = e.matrix, true
				break
			}
		}
	}
	if !ok {
		a.logger().ErrorContext(r.Context(), "federation request failed",
			slog.String("path", r.URL.Path), slog.String("origin", string(Origin(r.Context()))), slog.String("error", err.Error()))
		m = mxerr.Unknown
	}
	writeJSON(w, m.Status, m.Body())
}

// unrecognized answers unknown endpoints (404) and wrong methods (405)
// with M_UNRECOGNIZED (server-server API, "Unsupported endpoints").
func unrecognized(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		msg := "Unrecognized request"
		if status == http.StatusMethodNotAllowed {
			msg = "Method not allowed for this endpoint"
		}
		m := mxerr.Unrecognized.WithStatus(status).Msg(msg)
		writeJSON(w, m.Status, m.Body())
	}
}
