package main

import (
	"context"
	"os"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// runServe runs the homeserver until SIGINT or SIGTERM.
func runServe(ctx context.Context, cfg *config.Config) error {
	logger := app.NewLogger(cfg.Log, os.Stderr)
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
