// Package storage holds every line of Parley that talks to PostgreSQL: the
// connection pool, the migration runner and the implementations (pgx, plain
// SQL) of the store interfaces that the domain packages declare. Domain
// packages never import it; cmd/parley and app wire it in.
package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions size the connection pool. Zero values take pgx's defaults
// (MaxConns: the greater of 4 and the number of CPUs).
type PoolOptions struct {
	MaxConns int32
	MinConns int32

	// PingTimeout bounds the connectivity check Open makes, so that a
	// misconfigured URL fails start-up quickly. Default 10s.
	PingTimeout time.Duration
}

// pingAfterIdle is how long a pooled connection may sit idle before an
// acquire checks it with a round trip first. pgx's default is one second:
// at low load (a message every few seconds) that put a ping before the
// group commit's statement of nearly every send, one round trip more on
// the path of each message (issue #9). What the ping catches — a
// connection dropped while idle by a middlebox — takes minutes; a
// restarted server also breaks connections used a moment before, which no
// ping catches.
const pingAfterIdle = time.Minute

func pingIfIdleLong(_ context.Context, p pgxpool.ShouldPingParams) bool {
	return p.IdleDuration > pingAfterIdle
}

// Open creates a pool for url (a PostgreSQL URL or key=value string) and
// checks that the server answers. The error never contains the password.
//
// The pool's sessions run with PostgreSQL's JIT compilation off unless
// url sets jit: every statement here is a few index descents, but one
// over many rooms or users is estimated above jit_above_cost, and
// compiling it took longer than running it (a sync's room states: 30-280
// ms without JIT, 1.1-1.3 s with it; docs/performance.md).
func Open(ctx context.Context, url string, opts PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors redact the password themselves.
		return nil, fmt.Errorf("database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("database pool: min conns %d above max conns %d", cfg.MinConns, cfg.MaxConns)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	cfg.ShouldPing = pingIfIdleLong
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	timeout := opts.PingTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s@%s:%d/%s unreachable: %w",
			cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}
