package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/sql"
	"github.com/parleyhq/parley/storage"
)

// runMigrate applies pending migrations (`parley migrate`) or lists applied
// and pending ones (`parley migrate status`). The server also migrates at
// start; this command lets an operator do it ahead of a rollout.
func runMigrate(ctx context.Context, cfg *config.Config, args []string) error {
	logger := slog.Default() // configured by run
	db, err := app.OpenDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	switch {
	case len(args) == 0:
		if err := storage.Migrate(ctx, db.Pool, sql.Migrations); err != nil {
			return err
		}
		fmt.Println("migrations applied")
		return printMigrationStatus(ctx, db)
	case len(args) == 1 && args[0] == "status":
		return printMigrationStatus(ctx, db)
	default:
		return usagef("usage: parley migrate [status]")
	}
}

func printMigrationStatus(ctx context.Context, db *app.Database) error {
	state, err := storage.MigrationStatus(ctx, db.Pool, sql.Migrations)
	if err != nil {
		return err
	}
	for _, m := range state.Applied {
		fmt.Printf("applied  %s  %s\n", m.Name, m.AppliedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	for _, m := range state.Pending {
		fmt.Printf("pending  %s\n", m.Name)
	}
	for _, m := range state.Unknown {
		fmt.Printf("unknown  %s  (applied by a newer Parley)\n", m.Name)
	}
	return nil
}
