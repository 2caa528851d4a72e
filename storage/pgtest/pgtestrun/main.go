// Command pgtestrun runs a command against one throwaway PostgreSQL cluster
// and one throwaway MinIO server:
//
//	go run ./storage/pgtest/pgtestrun -- go test ./...
//
// It starts the cluster (unless PARLEY_TEST_DATABASE_URL is already set, in
// which case it only runs the command), exports its URL as
// PARLEY_TEST_DATABASE_URL so that every test binary's pgtest harness shares
// it instead of starting its own, does the same for MinIO with
// PARLEY_TEST_S3_ENDPOINT and its credentials (package miniotest), exits
// with the command's exit code, and always stops and removes both, also on
// SIGINT and SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/parleyhq/parley/storage/miniotest"
	"github.com/parleyhq/parley/storage/pgcluster"
	"github.com/parleyhq/parley/storage/pgtest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run returns the exit code: the command's, or 2 for a usage error, or 1
// when the cluster cannot be started or removed.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: pgtestrun -- command [args…]")
		return 2
	}
	// Catch signals before anything starts, so none is lost between
	// starting the cluster and starting the command.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	env := os.Environ()
	var cleanups []func() error
	cleanup := func() error {
		var errs []error
		for i := len(cleanups) - 1; i >= 0; i-- {
			errs = append(errs, cleanups[i]())
		}
		return errors.Join(errs...)
	}
	if getenv(pgtest.EnvDatabaseURL) == "" {
		c, tmp, err := startCluster()
		if err != nil {
			fmt.Fprintf(stderr, "pgtestrun: %v\n", err)
			return 1
		}
		cleanups = append(cleanups, func() error {
			err := c.Stop(context.Background())
			return errors.Join(err, os.RemoveAll(tmp))
		})
		env = append(env, pgtest.EnvDatabaseURL+"="+c.URL())
	}
	if getenv(miniotest.EnvEndpoint) == "" {
		// The first run on a machine builds MinIO: minutes.
		s, err := miniotest.Start(context.Background())
		if err != nil {
			fmt.Fprintf(stderr, "pgtestrun: %v\n", err)
			_ = cleanup()
			return 1
		}
		cleanups = append(cleanups, s.Stop)
		env = append(env, s.Env()...)
	}

	code := runCommand(args, env, stdout, stderr, sigs)
	if err := cleanup(); err != nil {
		fmt.Fprintf(stderr, "pgtestrun: remove the test servers: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func startCluster() (*pgcluster.Cluster, string, error) {
	tmp, err := pgcluster.TempDir("parley-pgtestrun-*")
	if err != nil {
		return nil, "", err
	}
	c, err := pgcluster.Ensure(context.Background(), pgcluster.Options{
		Dir:       filepath.Join(tmp, "data"),
		Throwaway: true,
	})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, "", err
	}
	return c, tmp, nil
}

// runCommand runs the command to completion, passing on signals that reach
// us, and returns its exit code (128+n when killed by signal n, as shells do).
func runCommand(args, env []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin = os.Stdin
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "pgtestrun: %v\n", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return exitErr.ExitCode()
			}
			if err != nil {
				fmt.Fprintf(stderr, "pgtestrun: %v\n", err)
				return 1
			}
			return 0
		}
	}
}
