// Command parley is the Parley homeserver: `parley serve` runs it, and the
// other subcommands administer it directly on its database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: parley [-config FILE] COMMAND [ARGS]

Commands:
  serve [-cpuprofile FILE]      run the homeserver (optionally profiling its CPU)
  migrate [status]              apply pending database migrations, or list them
  user add|list|reset-password|deactivate ...
                                administer accounts directly on the database
  keys list|rotate              list the signing keys, or retire the current one
                                (announced in old_verify_keys) for a new one
  federation check SERVER       discovery, TLS, version and keys of another server
  version                       print the version

The configuration is read from FILE (default: $PARLEY_CONFIG, else
./config.yaml when it exists), then overridden by PARLEY_* environment
variables.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	flags := flag.NewFlagSet("parley", flag.ContinueOnError)
	flags.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	configPath := flags.String("config", os.Getenv("PARLEY_CONFIG"), "configuration file")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return 2
	}
	command, rest := flags.Arg(0), flags.Args()[1:]
	if command == "version" {
		fmt.Println("parley", version)
		return 0
	}
	explicit := *configPath != ""
	if !explicit {
		*configPath = "config.yaml"
	}
	cfg, err := config.Load(*configPath, explicit, os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	// Packages without a logger of their own (the migration runner, the
	// managed PostgreSQL's defaults) log through the configured one too.
	slog.SetDefault(app.NewLogger(cfg.Log, os.Stderr))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch command {
	case "serve":
		err = runServe(ctx, cfg, rest)
	case "migrate":
		err = runMigrate(ctx, cfg, rest)
	case "user":
		err = runUser(ctx, cfg, rest)
	case "keys":
		err = runKeys(cfg, rest)
	case "federation":
		err = runFederation(ctx, cfg, rest, os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "parley: unknown command %q\n\n%s", command, usage)
		return 2
	}
	var usageErr *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usageErr):
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
}

// usageError is a mistake in the command line, answered with exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef reports a command-line mistake.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
