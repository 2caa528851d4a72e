package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestPoolPingsOnlyLongIdleConnections: a connection idle for seconds
// (a quiet server between two messages) is used without a ping round
// trip first; one idle for minutes is checked.
func TestPoolPingsOnlyLongIdleConnections(t *testing.T) {
	ctx := context.Background()
	pool, err := storage.Open(ctx, pgtest.NewDatabase(t), storage.PoolOptions{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	shouldPing := pool.Config().ShouldPing
	if shouldPing == nil {
		t.Fatal("the pool pings with pgx's default (after one second idle)")
	}
	for _, tc := range []struct {
		idle time.Duration
		ping bool
	}{
		{2 * time.Second, false},
		{30 * time.Second, false},
		{2 * time.Minute, true},
	} {
		if got := shouldPing(ctx, pgxpool.ShouldPingParams{IdleDuration: tc.idle}); got != tc.ping {
			t.Errorf("connection idle %v: ping %v, want %v", tc.idle, got, tc.ping)
		}
	}
}
