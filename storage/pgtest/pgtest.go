package pgtest

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/storage"
)

// Main runs the tests of a package, then drops its databases and stops its
// private cluster. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mainRunning = true
	code := m.Run()
	if srv != nil {
		if err := srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: cleanup: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

func harness(t testing.TB) *server {
	t.Helper()
	if !mainRunning {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which cleans up the databases")
	}
	s, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewPool returns a pool on this test binary's own database, migrated with
// every migration, created on first use and shared by all tests of the
// binary: tests must not depend on other rows being absent (use unique user
// ids, room ids …). The pool is closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	s := harness(t)
	name, err := s.mainDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return openPool(t, withDatabase(s.adminURL, name))
}

// mainDatabase creates NewPool's database once, even when tests call NewPool
// in parallel.
func (s *server) mainDatabase(ctx context.Context) (string, error) {
	s.mainOnce.Do(func() {
		s.mainDB, s.mainErr = s.create(ctx, true)
	})
	return s.mainDB, s.mainErr
}

// NewDatabase creates a migrated database for this test alone and returns
// its URL: for tests that need isolation, or that open and close pools
// themselves (a server restart). It is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// NewEmptyDatabase is NewDatabase without migrations, for tests of the
// migration runner itself.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	s := harness(t)
	ctx := context.Background()
	name, err := s.create(ctx, migrated)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.drop(context.Background(), name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return withDatabase(s.adminURL, name)
}

// OpenPool opens a small pool on url (from NewDatabase), closed when the
// test ends.
func OpenPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	return openPool(t, url)
}

func openPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := storage.Open(context.Background(), url, storage.PoolOptions{MaxConns: 4})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
