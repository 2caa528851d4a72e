package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaTooNew is returned when the database has a migration applied that
// this binary does not know: a newer Parley migrated it, and running older
// code against a newer schema could corrupt data.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// migrationLockKey is the pg_advisory_lock key that serialises migration
// runs of every Parley node sharing the database ("parley" in ASCII, then 1).
const migrationLockKey int64 = 0x7061726c65790001

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    int PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

const selectAppliedMigrations = `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`

const insertMigration = `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`

// Migration is one numbered schema change, a file NNNN_name.sql.
type Migration struct {
	Version   int
	Name      string    // the file name, e.g. "0001_init.sql"
	AppliedAt time.Time // zero while pending
	sql       string
}

// MigrationState is what MigrationStatus reports, each list in version order.
type MigrationState struct {
	Applied []Migration // known to this binary and applied
	Pending []Migration // known to this binary, not applied yet
	Unknown []Migration // applied, but not known to this binary
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the *.sql files at the root of fsys, in version
// order. A .sql file with a malformed name or a duplicate number is an
// error rather than silently skipped.
func loadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql (lower case, digits, underscores)", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("migration %s: numbers start at 0001", e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share the number %04d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate applies the migrations of fsys that the database lacks, in
// version order, each in its own transaction together with its row in
// schema_migrations: a failing file rolls back alone, earlier ones stay.
// A session advisory lock, held on one connection for the whole run, lets
// several nodes start at once: the others wait, then find nothing to do.
// Migration files must not contain transaction control statements.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	known, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer unlockMigrations(conn)

	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	state, err := migrationState(ctx, conn.Conn(), known)
	if err != nil {
		return err
	}
	if err := state.check(known); err != nil {
		return err
	}
	for _, m := range state.Pending {
		if err := apply(ctx, conn.Conn(), m); err != nil {
			return err
		}
		slog.InfoContext(ctx, "applied migration", slog.Int("version", m.Version), slog.String("name", m.Name))
	}
	return nil
}

// unlockMigrations releases the advisory lock even when the run's context
// has ended; if that fails the connection is closed, which releases it too.
func unlockMigrations(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

// check refuses a database that has migrations this binary does not know.
func (s MigrationState) check(known []Migration) error {
	if len(s.Unknown) == 0 {
		return nil
	}
	latest := 0
	if len(known) > 0 {
		latest = known[len(known)-1].Version
	}
	u := s.Unknown[len(s.Unknown)-1]
	if u.Version > latest {
		return fmt.Errorf("%w: migration %s is applied, this binary knows up to %04d; run a newer Parley", ErrSchemaTooNew, u.Name, latest)
	}
	return fmt.Errorf("migrate: applied migration %s is unknown to this binary (removed or renumbered?)", u.Name)
}

// apply runs one migration and records it, in one transaction.
func apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s%s: %w", m.Name, errorLine(m.sql, err), err)
	}
	if _, err := tx.Exec(ctx, insertMigration, m.Version, m.Name); err != nil {
		return fmt.Errorf("migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}

// errorLine turns the character position PostgreSQL reports for a syntax
// error into " line N" of the file, "" when there is none.
func errorLine(sql string, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return ""
	}
	runes := []rune(sql)
	pos := int(pgErr.Position) - 1
	if pos > len(runes) {
		return ""
	}
	return fmt.Sprintf(" line %d", strings.Count(string(runes[:pos]), "\n")+1)
}

// MigrationStatus lists applied, pending and unknown migrations, for
// `parley migrate status`. It changes nothing, and works on a database that
// was never migrated (everything pending).
func MigrationStatus(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) (MigrationState, error) {
	known, err := loadMigrations(fsys)
	if err != nil {
		return MigrationState{}, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return MigrationState{}, fmt.Errorf("migration status: %w", err)
	}
	defer conn.Release()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return MigrationState{}, fmt.Errorf("migration status: %w", err)
	}
	if !exists {
		return MigrationState{Pending: known}, nil
	}
	return migrationState(ctx, conn.Conn(), known)
}

// migrationState compares schema_migrations with the known migrations.
func migrationState(ctx context.Context, conn *pgx.Conn, known []Migration) (MigrationState, error) {
	rows, err := conn.Query(ctx, selectAppliedMigrations)
	if err != nil {
		return MigrationState{}, fmt.Errorf("read schema_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Migration, error) {
		var m Migration
		err := r.Scan(&m.Version, &m.Name, &m.AppliedAt)
		return m, err
	})
	if err != nil {
		return MigrationState{}, fmt.Errorf("read schema_migrations: %w", err)
	}
	byVersion := make(map[int]Migration, len(applied))
	for _, m := range applied {
		byVersion[m.Version] = m
	}
	var s MigrationState
	knownVersions := make(map[int]bool, len(known))
	for _, m := range known {
		knownVersions[m.Version] = true
		if a, ok := byVersion[m.Version]; ok {
			m.AppliedAt = a.AppliedAt
			s.Applied = append(s.Applied, m)
		} else {
			s.Pending = append(s.Pending, m)
		}
	}
	for _, a := range applied {
		if !knownVersions[a.Version] {
			s.Unknown = append(s.Unknown, a)
		}
	}
	return s, nil
}
