package storage

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the connection pool's statistics at scrape time.
type poolCollector struct {
	pool *pgxpool.Pool

	total, idle, acquired, max *prometheus.Desc
	acquireCount, emptyAcquire *prometheus.Desc
	acquireSeconds             *prometheus.Desc
}

// NewPoolCollector returns a Prometheus collector of pool's statistics.
func NewPoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("parley_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:           pool,
		total:          d("connections", "Connections open in the pool."),
		idle:           d("idle_connections", "Idle connections in the pool."),
		acquired:       d("acquired_connections", "Connections in use."),
		max:            d("max_connections", "Upper bound of the pool."),
		acquireCount:   d("acquires_total", "Connections acquired from the pool."),
		emptyAcquire:   d("empty_acquires_total", "Acquires that had to wait for or open a connection."),
		acquireSeconds: d("acquire_seconds_total", "Time spent acquiring connections."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.max, c.acquireCount, c.emptyAcquire, c.acquireSeconds} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.total, float64(s.TotalConns()))
	gauge(c.idle, float64(s.IdleConns()))
	gauge(c.acquired, float64(s.AcquiredConns()))
	gauge(c.max, float64(s.MaxConns()))
	counter(c.acquireCount, float64(s.AcquireCount()))
	counter(c.emptyAcquire, float64(s.EmptyAcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
}
