package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// runServe runs the homeserver until SIGINT or SIGTERM. With -cpuprofile
// FILE it records a CPU profile of the whole run into FILE (written at
// shutdown), for examining hot paths under load (cmd/parley-bench,
// docs/performance.md).
func runServe(ctx context.Context, cfg *config.Config, args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := flags.Parse(args); err != nil {
		return usagef("serve: %v", err)
	}
	if flags.NArg() > 0 {
		return usagef("serve: unexpected arguments %q", flags.Args())
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	logger := slog.Default() // configured by run
	tuneRuntime(cfg.Runtime, logger)
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
