// Package httpmetrics measures the requests of an HTTP listener: counters
// and latency histograms by route pattern, method and status, and the
// response writer that remembers the status a handler wrote. The client and
// federation listeners both use it, with their own api label, so that one
// query covers both. It must not import the edges or any router: each edge
// finds its route pattern itself.
package httpmetrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the request counters and latency histograms of one listener,
// labelled by route pattern (never by raw path, whose ids would make the
// label set unbounded).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New makes the metrics of the listener named api ("client",
// "federation") and registers them with reg when it is not nil.
func New(reg prometheus.Registerer, api string) *Metrics {
	labels := prometheus.Labels{"api": api}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "parley_http_requests_total",
			Help:        "HTTP requests served, by route, method and status.",
			ConstLabels: labels,
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "parley_http_request_duration_seconds",
			Help:        "HTTP request latency, by route and method.",
			ConstLabels: labels,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

// Observe counts one finished request.
func (m *Metrics) Observe(route, method string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// StatusRecorder remembers the status a handler wrote.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w}
}

func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Status is the status written, 200 when the handler wrote nothing.
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// hijack for WebSockets, deadlines).
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
