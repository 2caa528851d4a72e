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
		start := time.Now()
		info := &requestInfo{id: newRequestID()}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		rec := httpmetrics.NewStatusRecorder(w)
		rec.Header().Set("X-Request-Id", info.id)
		next.ServeHTTP(rec, r.WithContext(ctx))
		elapsed := time.Since(start)
		route := "unmatched"
		if rc := chi.RouteContext(ctx); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		if a.Metrics != nil {
			a.Metrics.Observe(route, r.Method, rec.Status(), elapsed)
		}
		a.Logger.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", info.id),
			slog.String("user_id", string(info.userID)),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.Status()),
			slog.Duration("duration", elapsed),
		)
	})
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
