package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// server is a parley binary the tool started for the run (-start).
type server struct {
	cmd    *exec.Cmd
	url    string
	pid    int
	dir    string
	exited chan error
}

// startServer runs `parley serve` on a temporary data directory: a
// managed PostgreSQL of its own there (durable settings, fsync on) unless
// -start-database names one, registration open, rate limits off, and
// waits until /health answers.
func startServer(ctx context.Context, cfg options, o *output) (*server, error) {
	bin, err := filepath.Abs(cfg.start)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "parley-bench-*")
	if err != nil {
		return nil, err
	}
	// The managed PostgreSQL runs as the postgres user when we are root: it
	// must be able to reach the data directory inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve"}
	if cfg.cpuProfile != "" {
		p, err := filepath.Abs(cfg.cpuProfile)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "-cpuprofile", p)
	}
	if cfg.traceFile != "" {
		p, err := filepath.Abs(cfg.traceFile)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = append(args, "-trace", p)
	}
	logPath := filepath.Join(dir, "parley.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // no ./config.yaml of the caller's: defaults and the variables below
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(),
		"PARLEY_SERVER_NAME=bench.test",
		"PARLEY_DATA_DIR="+filepath.Join(dir, "data"),
		"PARLEY_DATABASE_URL="+cfg.startDatabase,
		"PARLEY_LISTEN_CLIENT="+addr,
		"PARLEY_LISTEN_FEDERATION=127.0.0.1:0",
		"PARLEY_LISTEN_METRICS=",
		"PARLEY_REGISTRATION_MODE=open",
		"PARLEY_REGISTRATION_SHARED_SECRET="+cfg.sharedSecret,
		"PARLEY_RATE_LIMITS_ENABLED=false",
		"PARLEY_LOG_LEVEL=warn",
	)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{cmd: cmd, url: "http://" + addr, pid: cmd.Process.Pid, dir: dir, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	o.progress("started %s serve (pid %d) on %s, data in %s", bin, s.pid, s.url, dir)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := http.Get(s.url + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.exited:
			log, _ := os.ReadFile(logPath)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("parley exited before it was healthy (%v):\n%s", err, log)
		case <-ctx.Done():
			s.stop(o)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(o)
			return nil, errors.New("parley did not become healthy within 2 minutes")
		}
	}
}

// stop sends SIGTERM (the server then stops its managed PostgreSQL and
// writes its CPU profile), waits, and removes the data directory.
func (s *server) stop(o *output) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			o.progress("parley (pid %s) exited: %v", strconv.Itoa(s.pid), err)
		}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		o.progress("parley did not stop within 30 s of SIGTERM; killed")
	}
	os.RemoveAll(s.dir)
}
