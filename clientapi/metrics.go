package clientapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics are the request counters and latency histograms of one
// listener, labelled by route pattern (never by raw path, whose ids would
// make the label set unbounded).
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewHTTPMetrics registers the metrics of the listener named api.
func NewHTTPMetrics(reg prometheus.Registerer, api string) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "parley_http_requests_total",
			Help:        "HTTP requests served, by route, method and status.",
			ConstLabels: prometheus.Labels{"api": api},
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "parley_http_request_duration_seconds",
			Help:        "HTTP request latency, by route and method.",
			ConstLabels: prometheus.Labels{"api": api},
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *HTTPMetrics) observe(route, method string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}
