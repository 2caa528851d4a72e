package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// logFile is the server's log, inside the data directory; it is rotated
// once (to .1) when larger than maxLogSize at Start.
const (
	logFile    = "postgres.log"
	maxLogSize = 16 << 20
)

// errPortTaken marks a start that failed because another process bound the
// port first; Start then retries with another automatically chosen port.
var errPortTaken = errors.New("port already in use")

// Start starts the server and returns once it accepts connections, or with
// an error that includes the end of the server log. The server is stopped
// by Stop, and also (fast shutdown) if this process dies first. If another
// live process already runs the directory's server, Start attaches to it
// instead (URL works, Stop leaves it running).
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil || c.attached {
		return fmt.Errorf("pgcluster: %s already started", c.opts.Dir)
	}
	version, err := c.initialised()
	if err != nil {
		return err
	}
	if version == 0 {
		return fmt.Errorf("pgcluster: %s is not initialised (call Init)", c.opts.Dir)
	}
	bin, err := FindBinaries(version)
	if err != nil {
		return err
	}
	if pid, port := ownedElsewhere(c.opts.Dir); pid > 0 {
		// Another live process (`parley serve`) runs this cluster: use it,
		// never stop it.
		if err := c.waitReady(ctx, port, nil); err != nil {
			return fmt.Errorf("pgcluster: the server of %s (pid %d, owned by another process) is not ready: %w", c.opts.Dir, pid, err)
		}
		c.port, c.attached = port, true
		c.opts.Logger.InfoContext(ctx, "using the PostgreSQL another process started", "dir", c.opts.Dir, "port", port, "pid", pid)
		return nil
	}
	if err := clearStalePostmaster(c.opts.Dir, c.opts.StartTimeout); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	for attempt := 0; ; attempt++ {
		port, auto, err := c.choosePort()
		if err != nil {
			return err
		}
		err = c.startOnce(ctx, bin, port)
		if err == nil {
			if err := writeOwner(c.opts.Dir); err != nil {
				c.opts.Logger.WarnContext(ctx, "could not record the cluster's owner", "dir", c.opts.Dir, "error", err)
			}
			if auto {
				if err := rememberPort(c.opts.Dir, port); err != nil {
					c.opts.Logger.WarnContext(ctx, "could not remember the cluster port", "dir", c.opts.Dir, "error", err)
				}
			}
			c.opts.Logger.InfoContext(ctx, "started PostgreSQL", "dir", c.opts.Dir, "port", port, "version", bin.Major)
			return nil
		}
		if !auto || !errors.Is(err, errPortTaken) || attempt >= 4 {
			return err
		}
		// The remembered or picked port was taken meanwhile: forget it.
		_ = removeIfPresent(filepath.Join(c.opts.Dir, portFile))
	}
}

// choosePort applies Options.Port; auto reports the port was not configured.
func (c *Cluster) choosePort() (port int, auto bool, err error) {
	if c.opts.Port > 0 {
		return c.opts.Port, false, nil
	}
	if p := rememberedPort(c.opts.Dir); p > 0 && portFree(p) {
		return p, true, nil
	}
	p, err := freePort()
	return p, true, err
}

// startOnce launches postgres on port and waits until it is ready. Called
// with c.mu held.
func (c *Cluster) startOnce(ctx context.Context, bin Binaries, port int) error {
	logPath := filepath.Join(c.opts.Dir, logFile)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".1")
	}
	logStart := int64(0)
	if fi, err := os.Stat(logPath); err == nil {
		logStart = fi.Size()
	}
	logOut, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgcluster: open server log: %w", err)
	}
	defer logOut.Close() // the child keeps its own descriptor

	cmd := c.owner.command(c.opts.Dir, bin.Postgres, c.settings(port)...)
	cmd.Stdout = logOut
	cmd.Stderr = logOut
	// Own process group: a terminal's Ctrl-C reaches us, and we stop the
	// server in order. Pdeathsig: if we die (kill -9, test timeout), the
	// server gets a fast shutdown instead of living on as an orphan.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgcluster: start %s: %w", bin.Postgres, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.port = port
	c.cmd = cmd
	c.exited = exited

	if err := c.waitReady(ctx, port, exited); err != nil {
		c.stopLocked(context.Background())
		c.port = 0
		tail := readTail(logPath, logStart, 4096)
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("pgcluster: start on port %d: %w\nserver log:\n%s", port, err, tail)
	}
	return nil
}

// waitReady polls the server with a bounded deadline until it accepts a
// connection, the process exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context, port int, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable connect_timeout=2", port, serverUser)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(attempt, dsn)
		stop()
		if err == nil {
			return conn.Close(ctx)
		}
		last = err
		select {
		case <-exited:
			return errors.New("server exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last attempt: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Stop shuts the server down (fast shutdown: sessions rolled back, a
// checkpoint written) and waits for it, escalating to an immediate shutdown
// and then SIGKILL if it does not exit in time. Stopping a cluster that is
// not running is not an error; a cluster Start attached to (another
// process's) is left running.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(ctx)
}

func (c *Cluster) stopLocked(ctx context.Context) error {
	if c.attached {
		c.attached, c.port = false, 0
		return nil
	}
	if c.cmd == nil {
		return nil
	}
	defer func() { c.cmd, c.exited = nil, nil }()
	proc, exited := c.cmd.Process, c.exited
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		if err := proc.Signal(sig); err != nil {
			break // already gone
		}
		select {
		case <-exited:
			c.opts.Logger.InfoContext(ctx, "stopped PostgreSQL", "dir", c.opts.Dir)
			return nil
		case <-ctx.Done():
		}
		// Escalate, each further signal with a short grace.
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
	}
	select {
	case <-exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("pgcluster: server of %s (pid %d) did not exit", c.opts.Dir, proc.Pid)
	}
}

// readTail returns at most max bytes of path written after offset from.
func readTail(path string, from int64, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if fi.Size()-from > max {
		from = fi.Size() - max
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
