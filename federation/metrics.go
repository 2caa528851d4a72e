package federation

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/httpmetrics"
)

// observe measures and logs every request when it ends, with the same
// metric names as the client listener's and api="federation".
func (a *API) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := httpmetrics.NewStatusRecorder(w)
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		a.metrics.Observe(route, r.Method, rec.Status(), elapsed)
		// The origin is known only inside the authenticated handlers; the
		// path and status are enough to follow a peer's traffic.
		a.logger().LogAttrs(r.Context(), slog.LevelDebug, "federation request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.Status()),
			slog.Duration("duration", elapsed),
		)
	})
}
