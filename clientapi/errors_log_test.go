package clientapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A request its client abandoned is not logged as a server error; an
// unmapped failure of a live request still is.
func TestWriteErrorLogsAbandonedRequestsAtDebug(t *testing.T) {
	var logged bytes.Buffer
	a := &API{Deps: Deps{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
	a.writeError(httptest.NewRecorder(), gone, fmt.Errorf("read rooms: %w", context.Canceled))

	live := httptest.NewRequest(http.MethodGet, "/x", nil)
	a.writeError(httptest.NewRecorder(), live, errors.New("disk on fire"))

	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two log lines, got %q", logged.String())
	}
	if !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], "context canceled") {
		t.Errorf("abandoned request logged as %q, want level DEBUG", lines[0])
	}
	if !strings.Contains(lines[1], "level=ERROR") || !strings.Contains(lines[1], "disk on fire") {
		t.Errorf("live failure logged as %q, want level ERROR", lines[1])
	}
}
