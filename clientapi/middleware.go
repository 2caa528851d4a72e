package clientapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/httpmetrics"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

type requestInfoKey struct{}

// requestInfo is what the logging middleware learns while a request runs:
// the authentication middleware records the user on it.
type requestInfo struct {
	id     string
	userID id.UserID
	start  time.Time
	// detached: the handler took the connection over and records the
	// request itself when it answers (a parked long-poll, longpoll.go).
	detached bool
}

// setRequestUser records the authenticated user for the request log line.
func setRequestUser(ctx context.Context, user id.UserID) {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		info.userID = user
	}
}

// RequestID returns the id the logging middleware gave the request.
func RequestID(ctx context.Context) string {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// observe gives the request an id, and logs and measures it when it ends:
// request id, user id, method, path, status, duration.
func (a *API) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &requestInfo{id: newRequestID(), start: time.Now()}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		rec := httpmetrics.NewStatusRecorder(w)
		rec.Header().Set("X-Request-Id", info.id)
		next.ServeHTTP(rec, r.WithContext(ctx))
		if info.detached {
			return
		}
		a.recordRequest(ctx, info, r.Method, r.URL.Path, routePattern(ctx), rec.Status())
	})
}

// recordRequest logs and measures a finished request.
func (a *API) recordRequest(ctx context.Context, info *requestInfo, method, path, route string, status int) {
	elapsed := time.Since(info.start)
	if a.Metrics != nil {
		a.Metrics.Observe(route, method, status, elapsed)
	}
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("request_id", info.id),
		slog.String("user_id", string(info.userID)),
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
	)
}

// routePattern is the route that served the request of ctx, for metrics.
func routePattern(ctx context.Context) string {
	if rc := chi.RouteContext(ctx); rc != nil && rc.RoutePattern() != "" {
		return rc.RoutePattern()
	}
	return "unmatched"
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recoverPanics turns a panicking handler into a 500 M_UNKNOWN and a log
// line with the stack, instead of a dropped connection.
func (a *API) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.Logger.ErrorContext(r.Context(), "handler panicked",
					slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				writeMatrixError(w, mxerr.Unknown)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// cors adds the headers the spec requires on every Client-Server API
// response, so that web clients on any origin work, and answers preflight
// OPTIONS requests itself (spec: "Web Browser Clients").
func (a *API) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
