package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"runtime/trace"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// runServe runs the homeserver until SIGINT or SIGTERM. With -cpuprofile
// FILE it records a CPU profile of the whole run into FILE (written at
// shutdown), for examining hot paths under load (cmd/parley-bench,
// docs/performance.md). With -trace FILE it records an execution trace
// (go tool trace): where a request waits that is not CPU — the scheduler,
// channel hops between goroutines, the network, the database's answers.
func runServe(ctx context.Context, cfg *config.Config, args []string) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the run to this file")
	traceFile := flags.String("trace", "", "write an execution trace of the run to this file (go tool trace)")
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
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("trace: %w", err)
		}
		defer trace.Stop()
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
