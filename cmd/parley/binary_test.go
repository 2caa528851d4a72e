package main

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/storage/pgcluster"
	"github.com/parleyhq/parley/storage/pgtest"
)

// buildBinary compiles the parley command once per test that needs it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `parley serve` with env and waits until /health answers
// 200 (polling a condition with a deadline, not a fixed sleep).
func startServe(t *testing.T, bin string, env []string) (*serveProcess, string) {
	t.Helper()
	client := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), append(env,
		"PARLEY_LISTEN_CLIENT="+client,
		"PARLEY_LISTEN_FEDERATION=127.0.0.1:0",
		"PARLEY_LISTEN_METRICS=",
	)...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		res, err := http.Get("http://" + client + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return &serveProcess{cmd: cmd, exited: exited, logs: &logs}, client
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited before becoming healthy (%v); log:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveProcess is a running `parley serve`.
type serveProcess struct {
	cmd    *exec.Cmd
	exited chan error // receives Wait's result once; put back for the cleanup
	logs   *syncBuffer
}

// syncBuffer collects the server's output, written by exec's copying
// goroutine while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stopWithSIGTERM sends SIGTERM and expects a clean exit within the 10 s
// the issue allows.
func stopWithSIGTERM(t *testing.T, p *serveProcess) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; log:\n%s", err, p.logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10 s after SIGTERM; log:\n%s", p.logs.String())
	}
}

func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	p, client := startServe(t, bin, []string{
		"PARLEY_SERVER_NAME=hs1",
		"PARLEY_DATA_DIR=" + t.TempDir(),
		"PARLEY_DATABASE_URL=" + pgtest.NewDatabase(t),
	})
	res, err := http.Get("http://" + client + "/_matrix/client/versions")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("versions: %v %v", res, err)
	}
	res.Body.Close()
	stopWithSIGTERM(t, p)
	if !strings.Contains(p.logs.String(), "server_name=hs1") {
		t.Errorf("start-up log lacks the server name:\n%s", p.logs.String())
	}
}

// The embedded default: no database.url, so serve runs a managed
// PostgreSQL under data_dir, keeps the signing key there, and stops the
// database with itself; a second start reuses both.
func TestServeWithManagedPostgreSQL(t *testing.T) {
	bin := buildBinary(t)
	// Not t.TempDir: its parent is mode 0700 and the managed PostgreSQL runs
	// as the postgres user, which must reach data_dir.
	base, err := pgcluster.TempDir("parley-managed-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dataDir := filepath.Join(base, "data")
	env := []string{"PARLEY_SERVER_NAME=managed.test", "PARLEY_DATA_DIR=" + dataDir, "PARLEY_DATABASE_URL="}

	p, client := startServe(t, bin, env)
	reg := `{"username":"alice","password":"pw","auth":{"type":"m.login.dummy"}}`
	res, err := http.Post("http://"+client+"/_matrix/client/v3/register", "application/json", strings.NewReader(reg))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("register on the managed database: %v %v\n%s", res, err, p.logs.String())
	}
	res.Body.Close()
	key, err := os.ReadFile(filepath.Join(dataDir, "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	stopWithSIGTERM(t, p)
	if _, err := os.Stat(filepath.Join(dataDir, "postgres", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("the managed PostgreSQL still runs after the server stopped (postmaster.pid: %v)", err)
	}

	p, client = startServe(t, bin, env)
	login := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":"pw"}`
	res, err = http.Post("http://"+client+"/_matrix/client/v3/login", "application/json", strings.NewReader(login))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login after restart: %v %v\n%s", res, err, p.logs.String())
	}
	res.Body.Close()
	again, _ := os.ReadFile(filepath.Join(dataDir, "signing.key"))
	if !bytes.Equal(key, again) {
		t.Error("signing key changed across restarts")
	}
	stopWithSIGTERM(t, p)
}

func TestServeRefusesAnInvalidConfiguration(t *testing.T) {
	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PARLEY_SERVER_NAME=bad name", "PARLEY_LOG_FORMAT=xml", "PARLEY_REGISTRATION_MODE=maybe")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit code 1, got %v\n%s", err, out)
	}
	for _, key := range []string{"server_name", "log.format", "registration.mode"} {
		if !strings.Contains(string(out), key) {
			t.Errorf("output does not name %s:\n%s", key, out)
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "parley ") {
		t.Errorf("version: %q %v", out, err)
	}
	err = exec.Command(bin, "frobnicate").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("unknown command: %v, want exit code 2", err)
	}
}
