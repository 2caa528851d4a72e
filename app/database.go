package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/sql"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgcluster"
)

// managedDatabase is the database name inside the managed PostgreSQL.
const managedDatabase = "parley"

// Database is Parley's connection pool, and the managed PostgreSQL behind
// it when database.url is empty. The server and the admin subcommands
// (migrate, user …) open it the same way.
type Database struct {
	Pool    *pgxpool.Pool
	cluster *pgcluster.Cluster
	logger  *slog.Logger
}

// OpenDatabase connects to database.url, or starts the managed PostgreSQL
// under data_dir/postgres and connects to it. It does not migrate.
func OpenDatabase(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Database, error) {
	db := &Database{logger: logger}
	url := cfg.Database.URL
	if url == "" {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
		if err != nil {
			return nil, err
		}
		logger.InfoContext(ctx, "starting the managed PostgreSQL", slog.String("dir", dir))
		db.cluster, err = pgcluster.Ensure(ctx, pgcluster.Options{
			Dir:    dir,
			Port:   cfg.Database.ManagedPort,
			Logger: logger,
		})
		if err != nil {
			return nil, fmt.Errorf("managed PostgreSQL: %w", err)
		}
		if err := db.cluster.EnsureDatabase(ctx, managedDatabase); err != nil {
			db.Close()
			return nil, err
		}
		url = db.cluster.DatabaseURL(managedDatabase)
	}
	pool, err := storage.Open(ctx, url, storage.PoolOptions{MaxConns: int32(cfg.Database.MaxConns)})
	if err != nil {
		db.Close()
		return nil, err
	}
	db.Pool = pool
	return db, nil
}

// OpenMigratedDatabase is OpenDatabase followed by the migrations, for the
// commands that work on the schema as the server uses it.
func OpenMigratedDatabase(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Database, error) {
	db, err := OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := storage.Migrate(ctx, db.Pool, sql.Migrations); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool, then stops the managed PostgreSQL.
func (db *Database) Close() {
	if db.Pool != nil {
		db.Pool.Close()
	}
	if db.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.cluster.Stop(ctx); err != nil {
			db.logger.Warn("stopping the managed PostgreSQL", slog.String("error", err.Error()))
		}
	}
}
