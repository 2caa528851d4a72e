package main

import (
	"context"
	"log/slog"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// runServe runs the homeserver until SIGINT or SIGTERM.
func runServe(ctx context.Context, cfg *config.Config) error {
	logger := slog.Default() // configured by run
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
