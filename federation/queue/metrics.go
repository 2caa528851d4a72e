package queue

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/id"
)

// Metrics are the queue's Prometheus metrics. Destinations are not a
// label: their number is unbounded.
type Metrics struct {
	transactions *prometheus.CounterVec
	pdus         prometheus.Counter
	edus         prometheus.Counter
	failures     *prometheus.CounterVec
	depthGauge   prometheus.Gauge

	mu     sync.Mutex
	depths map[id.ServerName]int
}

// NewMetrics registers the queue's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_federation_transactions_sent_total",
			Help: "Outbound federation transactions accepted by their destination, by mode (normal, catch_up).",
		}, []string{"mode"}),
		pdus: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_federation_pdus_sent_total",
			Help: "PDUs in accepted outbound transactions.",
		}),
		edus: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_federation_edus_sent_total",
			Help: "EDUs in accepted outbound transactions.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_federation_transaction_failures_total",
			Help: "Failed outbound transactions: retried (the destination did not answer) or dropped (refused for good).",
		}, []string{"outcome"}),
		depthGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_federation_queue_depth",
			Help: "PDUs waiting for their destinations, as of each destination's latest transaction (capped per destination at the catch-up threshold).",
		}),
		depths: map[id.ServerName]int{},
	}
	if reg != nil {
		reg.MustRegister(m.transactions, m.pdus, m.edus, m.failures, m.depthGauge)
	}
	return m
}

func (m *Metrics) sent(_ id.ServerName, pdus, edus int, catchUp bool) {
	mode := "normal"
	if catchUp {
		mode = "catch_up"
	}
	m.transactions.WithLabelValues(mode).Inc()
	m.pdus.Add(float64(pdus))
	m.edus.Add(float64(edus))
}

func (m *Metrics) failed(_ id.ServerName, dropped bool) {
	outcome := "retried"
	if dropped {
		outcome = "dropped"
	}
	m.failures.WithLabelValues(outcome).Inc()
}

// depth records how many PDUs wait for dest.
func (m *Metrics) depth(dest id.ServerName, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.depths[dest]
	if n == 0 {
		delete(m.depths, dest)
	} else {
		m.depths[dest] = n
	}
	m.depthGauge.Add(float64(n - old))
}
