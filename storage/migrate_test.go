package storage_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// files builds a migration set from name → SQL.
func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, sql := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return fsys
}

func emptyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return pgtest.OpenPool(t, pgtest.NewEmptyDatabase(t))
}

func versions(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// logged returns the order in which migrations wrote to the log table.
func logged(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT v FROM mlog ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

// ordered migrations record their version in mlog; 0001 creates it, so any
// other order fails.
var ordered = map[string]string{
	"0001_log.sql":   `CREATE TABLE mlog (seq serial PRIMARY KEY, v int NOT NULL); INSERT INTO mlog (v) VALUES (1);`,
	"0002_two.sql":   `INSERT INTO mlog (v) VALUES (2);`,
	"0010_ten.sql":   `INSERT INTO mlog (v) VALUES (10);`,
	"README.md":      `not a migration`,
	"0009_nine.sql":  `INSERT INTO mlog (v) VALUES (9);`,
	"0003_three.sql": "-- comment only\nINSERT INTO mlog (v) VALUES (3);\n",
}

func TestMigrateOrderAndIdempotence(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	fsys := files(ordered)
	want := []int{1, 2, 3, 9, 10}
	for i := 1; i <= 2; i++ {
		if err := storage.Migrate(ctx, pool, fsys); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if got := logged(t, pool); !equal(got, want) {
			t.Errorf("run %d: migrations ran in order %v, want %v once each", i, got, want)
		}
		if got := versions(t, pool); !equal(got, want) {
			t.Errorf("run %d: schema_migrations %v, want %v", i, got, want)
		}
	}
	fsys["0011_eleven.sql"] = &fstest.MapFile{Data: []byte(`INSERT INTO mlog (v) VALUES (11);`)}
	if err := storage.Migrate(ctx, pool, fsys); err != nil {
		t.Fatal(err)
	}
	if got, want := logged(t, pool), append(want, 11); !equal(got, want) {
		t.Errorf("after adding 0011: %v, want %v", got, want)
	}
}

func TestMigrateFailureRollsBackAlone(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	fsys := files(map[string]string{
		"0001_ok.sql":    `CREATE TABLE first (x int);`,
		"0002_bad.sql":   "CREATE TABLE half_done (x int);\nINSERT INTO first VALUES (1);\nSELEC oops;\n",
		"0003_later.sql": `CREATE TABLE later (x int);`,
	})
	err := storage.Migrate(ctx, pool, fsys)
	if err == nil {
		t.Fatal("a failing migration reported success")
	}
	for _, want := range []string{"0002_bad.sql", "line 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := versions(t, pool); !equal(got, []int{1}) {
		t.Errorf("schema_migrations %v, want [1]", got)
	}
	var halfDone, later bool
	var rows int
	if err := pool.QueryRow(ctx, `SELECT to_regclass('half_done') IS NOT NULL, to_regclass('later') IS NOT NULL, (SELECT count(*) FROM first)`).Scan(&halfDone, &later, &rows); err != nil {
		t.Fatal(err)
	}
	if halfDone || rows != 0 {
		t.Errorf("the failed migration left changes: half_done=%v, rows in first=%d", halfDone, rows)
	}
	if later {
		t.Error("a migration after the failing one was applied")
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	full := files(map[string]string{"0001_a.sql": `SELECT 1;`, "0002_b.sql": `SELECT 2;`})
	if err := storage.Migrate(ctx, pool, full); err != nil {
		t.Fatal(err)
	}
	older := files(map[string]string{"0001_a.sql": `SELECT 1;`})
	if err := storage.Migrate(ctx, pool, older); !errors.Is(err, storage.ErrSchemaTooNew) {
		t.Errorf("Migrate with an older binary: %v, want ErrSchemaTooNew", err)
	}
}

func TestMigrateRejectsBadFileNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys map[string]string
	}{
		{"three digits", map[string]string{"001_a.sql": `SELECT 1;`}},
		{"upper case", map[string]string{"0001_Init.sql": `SELECT 1;`}},
		{"duplicate number", map[string]string{"0001_a.sql": `SELECT 1;`, "0001_b.sql": `SELECT 1;`}},
		{"zero", map[string]string{"0000_a.sql": `SELECT 1;`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := emptyPool(t)
			if err := storage.Migrate(context.Background(), pool, files(tc.fsys)); err == nil {
				t.Fatal("accepted")
			}
			var exists bool
			if err := pool.QueryRow(context.Background(), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists {
				t.Error("a rejected set still touched the database")
			}
		})
	}
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	// CREATE TABLE without IF NOT EXISTS: applying a file twice fails.
	fsys := files(map[string]string{
		"0001_a.sql": `CREATE TABLE a (x int); SELECT pg_sleep(0.1);`,
		"0002_b.sql": `CREATE TABLE b (x int);`,
		"0003_c.sql": `CREATE TABLE c (x int);`,
	})
	const nodes = 4
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for range nodes {
		// A pool per "node", as separate processes would have.
		pool := pgtest.OpenPool(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- storage.Migrate(ctx, pool, fsys)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	if got := versions(t, pgtest.OpenPool(t, url)); !equal(got, []int{1, 2, 3}) {
		t.Errorf("schema_migrations %v, want each file once", got)
	}
}

func TestMigrationStatus(t *testing.T) {
	ctx := context.Background()
	pool := emptyPool(t)
	two := map[string]string{"0001_a.sql": `SELECT 1;`, "0002_b.sql": `SELECT 2;`}
	three := map[string]string{"0001_a.sql": `SELECT 1;`, "0002_b.sql": `SELECT 2;`, "0003_c.sql": `SELECT 3;`}
	names := func(ms []storage.Migration) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return strings.Join(s, ",")
	}

	st, err := storage.MigrationStatus(ctx, pool, files(three))
	if err != nil {
		t.Fatal(err)
	}
	if names(st.Applied) != "" || names(st.Pending) != "0001_a.sql,0002_b.sql,0003_c.sql" {
		t.Errorf("fresh database: applied %q pending %q", names(st.Applied), names(st.Pending))
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("MigrationStatus created schema_migrations (%v)", err)
	}

	if err := storage.Migrate(ctx, pool, files(two)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                      string
		fsys                      map[string]string
		applied, pending, unknown string
	}{
		{"newer binary sees pending", three, "0001_a.sql,0002_b.sql", "0003_c.sql", ""},
		{"older binary sees unknown", map[string]string{"0001_a.sql": `SELECT 1;`}, "0001_a.sql", "", "0002_b.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := storage.MigrationStatus(ctx, pool, files(tc.fsys))
			if err != nil {
				t.Fatal(err)
			}
			if got := names(st.Applied); got != tc.applied {
				t.Errorf("applied %q, want %q", got, tc.applied)
			}
			if got := names(st.Pending); got != tc.pending {
				t.Errorf("pending %q, want %q", got, tc.pending)
			}
			if got := names(st.Unknown); got != tc.unknown {
				t.Errorf("unknown %q, want %q", got, tc.unknown)
			}
			for _, m := range st.Applied {
				if m.AppliedAt.IsZero() {
					t.Errorf("%s applied without a time", m.Name)
				}
			}
		})
	}
}
