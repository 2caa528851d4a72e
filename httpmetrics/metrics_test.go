package httpmetrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatusRecorderKeepsTheFirstStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"nothing written", func(http.ResponseWriter) {}, http.StatusOK},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK},
		{"explicit status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, http.StatusTeapot},
		{"second status ignored", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK)
		}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewStatusRecorder(httptest.NewRecorder())
			tc.write(rec)
			if got := rec.Status(); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestStatusRecorderUnwrapsForResponseController(t *testing.T) {
	inner := httptest.NewRecorder()
	rec := NewStatusRecorder(inner)
	if err := http.NewResponseController(rec).Flush(); err != nil {
		t.Fatalf("flush through the recorder: %v", err)
	}
	if !inner.Flushed {
		t.Fatal("the underlying writer was not flushed")
	}
}

func TestMetricsCountByRouteMethodAndStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "federation")
	m.Observe("/a/{id}", "GET", 200, time.Millisecond)
	m.Observe("/a/{id}", "GET", 200, time.Millisecond)
	m.Observe("/a/{id}", "GET", 404, time.Millisecond)
	want := `
# HELP parley_http_requests_total HTTP requests served, by route, method and status.
# TYPE parley_http_requests_total counter
parley_http_requests_total{api="federation",method="GET",route="/a/{id}",status="200"} 2
parley_http_requests_total{api="federation",method="GET",route="/a/{id}",status="404"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "parley_http_requests_total"); err != nil {
		t.Fatal(err)
	}
}
