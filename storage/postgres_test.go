package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// The package's TestMain (pgtest.Main) is in users_test.go.

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("applies pool sizes and answers", func(t *testing.T) {
		pool, err := storage.Open(ctx, pgtest.NewDatabase(t), storage.PoolOptions{MaxConns: 3, MinConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if got := pool.Config().MaxConns; got != 3 {
			t.Errorf("MaxConns = %d, want 3", got)
		}
		var one int
		if err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Errorf("SELECT 1 = %d, %v", one, err)
		}
	})
	t.Run("unreachable server fails within the ping deadline without the password", func(t *testing.T) {
		start := time.Now()
		// Port 1 on loopback: nothing listens, the connection is refused.
		pool, err := storage.Open(ctx, "postgres://someone:s3cretpw@127.0.0.1:1/db?connect_timeout=1", storage.PoolOptions{PingTimeout: 2 * time.Second})
		if err == nil {
			pool.Close()
			t.Fatal("Open of an unreachable server succeeded")
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("error leaks the password: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open took %s", d)
		}
	})
	t.Run("JIT is off unless the URL turns it on", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		for _, tt := range []struct{ url, want string }{
			{url, "off"},
			{withParam(url, "jit=on"), "on"},
		} {
			pool, err := storage.Open(ctx, tt.url, storage.PoolOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var jit string
			err = pool.QueryRow(ctx, `SHOW jit`).Scan(&jit)
			pool.Close()
			if err != nil || jit != tt.want {
				t.Errorf("jit = %q (%v), want %q", jit, err, tt.want)
			}
		}
	})
	t.Run("min above max is refused", func(t *testing.T) {
		pool, err := storage.Open(ctx, pgtest.NewDatabase(t), storage.PoolOptions{MaxConns: 2, MinConns: 5})
		if err == nil {
			pool.Close()
			t.Fatal("Open accepted MinConns > MaxConns")
		}
	})
}

// withParam adds a query parameter to a PostgreSQL URL.
func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}
