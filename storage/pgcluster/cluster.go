// Package pgcluster runs a private PostgreSQL server from the machine's own
// initdb and postgres binaries. Two callers use it: `parley serve` without a
// database.url (a persistent, durable cluster under <data_dir>/postgres) and
// the test harness (a throwaway cluster in a temporary directory, fsync off).
//
// The server listens on 127.0.0.1 only, with trust authentication for the
// superuser "postgres", and keeps its unix socket in the cluster directory.
// It is a child of this process: it receives a fast-shutdown signal when the
// process that started it dies, and a later Start recovers from a stale
// postmaster.pid left by a kill -9. When another live process already runs
// the directory's server (an admin command such as `parley migrate` beside
// `parley serve`), Start uses that server and Stop leaves it running.
//
// This package imports nothing of Parley's.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a cluster.
type Options struct {
	// Dir is the data directory (PGDATA). It is created when missing. When
	// running as root its parents must be searchable by the postgres user.
	Dir string

	// Port to listen on, on 127.0.0.1. 0 means: the port remembered in Dir
	// by an earlier Start when it is still free, else a free port, which is
	// then remembered (file parley.port in Dir).
	Port int

	// Throwaway trades durability for speed, for tests: initdb --no-sync,
	// fsync, synchronous_commit and full_page_writes off, more connections
	// for test packages running in parallel. A crash may corrupt the
	// cluster. Leave false for anything that keeps data.
	Throwaway bool

	// Settings are extra server settings (postgres -c name=value).
	Settings map[string]string

	// StartTimeout bounds how long Start waits for the server to accept
	// connections (and Stop for it to exit). Default 60s.
	StartTimeout time.Duration

	// Logger receives lifecycle messages. Default slog.Default().
	Logger *slog.Logger
}

// Cluster is one data directory and, after Start, the postgres server
// serving it.
type Cluster struct {
	opts  Options
	owner owner

	mu       sync.Mutex
	port     int
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the server process has exited
	attached bool          // the server belongs to another live process
}

// New prepares a cluster for opts.Dir; it starts nothing.
func New(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pgcluster: empty directory")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	opts.Dir = dir
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	o, err := currentOwner()
	if err != nil {
		return nil, err
	}
	return &Cluster{opts: opts, owner: o}, nil
}

// Ensure is New, Init and Start: the whole start-up of a cluster.
func Ensure(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Init(ctx); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Dir is the data directory.
func (c *Cluster) Dir() string { return c.opts.Dir }

// Port is the port the server listens on; 0 before Start.
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// URL is the pgx connection URL of the "postgres" database as superuser.
func (c *Cluster) URL() string { return c.DatabaseURL("postgres") }

// DatabaseURL is the pgx connection URL of database name as superuser.
func (c *Cluster) DatabaseURL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(serverUser),
		Host:     "127.0.0.1:" + strconv.Itoa(c.Port()),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// initialised reports the major version in PG_VERSION, 0 when Dir is not a
// cluster yet.
func (c *Cluster) initialised() (int, error) {
	data, err := os.ReadFile(filepath.Join(c.opts.Dir, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %s/PG_VERSION: %q is not a version", c.opts.Dir, data)
	}
	return v, nil
}

// Init creates the cluster with initdb unless Dir already holds one. It
// refuses a non-empty directory that is not a cluster rather than mix files.
func (c *Cluster) Init(ctx context.Context) error {
	dir := c.opts.Dir
	if v, err := c.initialised(); err != nil || v > 0 {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: create %s: %w", dir, err)
	}
	if err := c.owner.checkReachable(dir); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("pgcluster: %s is neither empty nor a PostgreSQL cluster (no PG_VERSION); refusing to initialise it", dir)
	}
	if err := c.owner.chown(dir); err != nil {
		return fmt.Errorf("pgcluster: give %s to %s: %w", dir, serverUser, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	bin, err := FindBinaries(0)
	if err != nil {
		return err
	}
	args := []string{"-D", dir, "-U", serverUser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if c.opts.Throwaway {
		args = append(args, "--no-sync")
	}
	cmd := c.owner.command(dir, bin.Initdb, args...)
	out, err := runContext(ctx, cmd)
	if err != nil {
		return fmt.Errorf("pgcluster: initdb %s: %w\n%s", dir, err, out)
	}
	c.opts.Logger.InfoContext(ctx, "initialised PostgreSQL cluster", "dir", dir, "version", bin.Major)
	return nil
}

// runContext runs cmd, killing it when ctx ends, and returns its output.
func runContext(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var buf strings.Builder
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(buf.String()), err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return []byte(buf.String()), ctx.Err()
	}
}

// settings are the -c options of the server.
func (c *Cluster) settings(port int) []string {
	s := map[string]string{
		"listen_addresses":  "127.0.0.1",
		"port":              strconv.Itoa(port),
		"logging_collector": "off",
	}
	// Unix socket paths are limited to 107 bytes; with a longer directory
	// the server would refuse to start, so it gets TCP only.
	if len(c.opts.Dir)+len("/.s.PGSQL.65535") < 107 {
		s["unix_socket_directories"] = c.opts.Dir
	} else {
		s["unix_socket_directories"] = ""
	}
	if c.opts.Throwaway {
		s["fsync"] = "off"
		s["synchronous_commit"] = "off"
		s["full_page_writes"] = "off"
		s["max_connections"] = "400"
	}
	for k, v := range c.opts.Settings {
		s[k] = v
	}
	args := []string{"-D", c.opts.Dir}
	for k, v := range s {
		args = append(args, "-c", k+"="+v)
	}
	return args
}
