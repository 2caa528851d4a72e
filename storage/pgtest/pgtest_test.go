package pgtest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/sql"
)

func TestMain(m *testing.M) { Main(m) }

func scalar[T any](t *testing.T, pool *pgxpool.Pool, q string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestNewDatabaseIsMigrated(t *testing.T) {
	files, err := fs.Glob(sql.Migrations, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations embedded: %v", err)
	}
	pool := OpenPool(t, NewDatabase(t))
	if got := scalar[int](t, pool, `SELECT count(*) FROM schema_migrations`); got != len(files) {
		t.Errorf("schema_migrations has %d rows, want %d (one per file)", got, len(files))
	}
}

func TestDatabasesAreIsolated(t *testing.T) {
	a := OpenPool(t, NewDatabase(t))
	b := OpenPool(t, NewDatabase(t))
	if _, err := a.Exec(context.Background(), `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	if got := scalar[bool](t, b, `SELECT to_regclass('only_in_a') IS NULL`); !got {
		t.Error("a table created in one NewDatabase is visible in another")
	}
	if scalar[string](t, a, `SELECT current_database()`) == scalar[string](t, b, `SELECT current_database()`) {
		t.Error("two NewDatabase calls returned the same database")
	}
}

func TestNewPoolSharesTheProcessDatabase(t *testing.T) {
	p1, p2 := NewPool(t), NewPool(t)
	n1 := scalar[string](t, p1, `SELECT current_database()`)
	if n2 := scalar[string](t, p2, `SELECT current_database()`); n1 != n2 {
		t.Errorf("NewPool databases differ: %s, %s", n1, n2)
	}
	if got := scalar[int](t, p1, `SELECT count(*) FROM schema_migrations`); got == 0 {
		t.Error("NewPool's database is not migrated")
	}
}

func TestNewEmptyDatabaseHasNoSchema(t *testing.T) {
	pool := OpenPool(t, NewEmptyDatabase(t))
	if got := scalar[bool](t, pool, `SELECT to_regclass('schema_migrations') IS NULL`); !got {
		t.Error("NewEmptyDatabase has schema_migrations")
	}
}

func TestNewDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	t.Run("owner", func(t *testing.T) {
		name = scalar[string](t, OpenPool(t, NewDatabase(t)), `SELECT current_database()`)
	})
	if name == "" {
		t.Fatal("no database name")
	}
	admin := NewPool(t)
	if exists := scalar[bool](t, admin, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"url path replaced", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/db1?sslmode=disable"},
		{"url without path", "postgresql://u:p@h:1", "postgresql://u:p@h:1/db1"},
		{"keyword form gets dbname appended", "host=127.0.0.1 user=postgres dbname=postgres", "host=127.0.0.1 user=postgres dbname=postgres dbname=db1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := withDatabase(tc.in, "db1"); got != tc.want {
				t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParallelNewDatabase(t *testing.T) {
	names := make([]string, 6)
	t.Run("group", func(t *testing.T) {
		for i := range names {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				pool := OpenPool(t, NewDatabase(t))
				names[i] = scalar[string](t, pool, `SELECT current_database()`)
				if got := scalar[int](t, pool, `SELECT count(*) FROM schema_migrations`); got == 0 {
					t.Error("not migrated")
				}
			})
		}
	})
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			t.Errorf("parallel NewDatabase names %v are not distinct", names)
			break
		}
		seen[n] = true
	}
}

func TestUnreachableURLFailsLoudly(t *testing.T) {
	// A fresh copy of this test binary whose harness is pointed at a port
	// where nothing listens: the test must fail, not skip or pass.
	cmd := exec.Command(os.Args[0], "-test.run=^TestNewPoolSharesTheProcessDatabase$", "-test.v")
	cmd.Env = append(os.Environ(), EnvDatabaseURL+"=postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("tests passed against an unreachable server:\n%s", out)
	}
	for _, want := range []string{"--- FAIL", EnvDatabaseURL + " is set but"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Errorf("a test skipped:\n%s", out)
	}
}
