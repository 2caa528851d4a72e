// Package pgtest is the test database harness: every package with database
// tests calls Main from its TestMain and gets databases from NewPool,
// NewDatabase or NewEmptyDatabase. Tests never skip for lack of a database.
//
// Where the server comes from, in order:
//  1. PARLEY_TEST_DATABASE_URL, a superuser (or CREATEDB) URL of a running
//     server; `go run ./storage/pgtest/pgtestrun -- go test ./...` (make test)
//     sets it to one throwaway cluster shared by all test binaries. If it is
//     set but unreachable the test fails; it is never ignored.
//  2. Otherwise a private throwaway cluster for this test binary (temporary
//     directory, fsync off, free port), started on first use and removed
//     when Main ends. This is what a plain `go test ./pkg` gets.
//
// Each test binary creates its databases under a unique prefix, from a
// template migrated once with every migration of sql.Migrations; Main drops
// them when the tests end.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/sql"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgcluster"
)

// EnvDatabaseURL names the environment variable that points the harness at
// an existing server.
const EnvDatabaseURL = "PARLEY_TEST_DATABASE_URL"

// server is this process's connection to a PostgreSQL server for tests.
type server struct {
	adminURL string             // where databases are created and dropped
	cluster  *pgcluster.Cluster // nil when using EnvDatabaseURL
	tmpDir   string             // the private cluster's directory

	prefix   string // unique per process, starts every database name
	template string // migrated database the others are copied from

	mu       sync.Mutex
	counter  int
	dbs      map[string]bool // created and not dropped yet
	mainOnce sync.Once
	mainDB   string // NewPool's database, created on first use
	mainErr  error
}

var (
	mainRunning bool // set by Main: without it nothing would clean up

	setupOnce sync.Once
	srv       *server
	setupErr  error
)

// get starts or connects to the server on first use.
func get() (*server, error) {
	setupOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, setupErr = setup(ctx)
	})
	return srv, setupErr
}

func setup(ctx context.Context) (*server, error) {
	s := &server{prefix: uniquePrefix(), dbs: map[string]bool{}}
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		pool, err := storage.Open(ctx, u, storage.PoolOptions{MaxConns: 1})
		if err != nil {
			return nil, fmt.Errorf("pgtest: %s is set but the server is unusable: %w", EnvDatabaseURL, err)
		}
		pool.Close()
		s.adminURL = u
	} else {
		tmp, err := pgcluster.TempDir("parley-pgtest-*")
		if err != nil {
			return nil, err
		}
		s.tmpDir = tmp
		s.cluster, err = pgcluster.Ensure(ctx, pgcluster.Options{
			Dir:       filepath.Join(tmp, "data"),
			Throwaway: true,
			Logger:    slog.New(slog.DiscardHandler), // failures are returned
		})
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("pgtest: start a private PostgreSQL (set %s to use a running one): %w", EnvDatabaseURL, err)
		}
		s.adminURL = s.cluster.URL()
	}
	if err := s.createTemplate(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// createTemplate makes the migrated database every other one copies:
// migrating once per process instead of once per database.
func (s *server) createTemplate(ctx context.Context) error {
	s.template = s.prefix + "_template"
	if err := pgcluster.CreateDatabase(ctx, s.adminURL, s.template, ""); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.dbs[s.template] = true
	pool, err := storage.Open(ctx, withDatabase(s.adminURL, s.template), storage.PoolOptions{MaxConns: 1})
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer pool.Close() // CREATE DATABASE … TEMPLATE needs it disconnected
	if err := storage.Migrate(ctx, pool, sql.Migrations); err != nil {
		return fmt.Errorf("pgtest: migrate the template database: %w", err)
	}
	return nil
}

// create makes a new database, migrated (a copy of the template) or empty.
func (s *server) create(ctx context.Context, migrated bool) (string, error) {
	s.mu.Lock()
	s.counter++
	name := fmt.Sprintf("%s_%d", s.prefix, s.counter)
	s.dbs[name] = true
	s.mu.Unlock()
	template := ""
	if migrated {
		template = s.template
	}
	if err := pgcluster.CreateDatabase(ctx, s.adminURL, name, template); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return name, nil
}

func (s *server) drop(ctx context.Context, name string) error {
	s.mu.Lock()
	delete(s.dbs, name)
	s.mu.Unlock()
	return pgcluster.DropDatabase(ctx, s.adminURL, name)
}

// close drops what this process created on a shared server, or stops and
// removes the private cluster.
func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.cluster != nil {
		err := s.cluster.Stop(ctx)
		if rmErr := os.RemoveAll(s.tmpDir); err == nil {
			err = rmErr
		}
		return err
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.dbs))
	for n := range s.dbs {
		names = append(names, n)
	}
	s.mu.Unlock()
	var firstErr error
	for _, n := range names {
		if err := s.drop(ctx, n); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// uniquePrefix names this process's databases: the pid for whoever looks
// at the server, random bytes against pid reuse across machines sharing it.
func uniquePrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("parley_test_%d_%s", os.Getpid(), hex.EncodeToString(b))
}

// withDatabase returns the connection string u pointing at database name.
// Both URL and keyword=value forms are accepted.
func withDatabase(u, name string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		parsed, err := url.Parse(u)
		if err == nil {
			parsed.Path = "/" + name
			parsed.RawPath = ""
			return parsed.String()
		}
	}
	// In keyword=value strings a later keyword overrides an earlier one.
	return u + " dbname=" + name
}
