package pgcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// portFile remembers, inside the cluster directory, the port picked
// automatically the first time, so that a managed cluster keeps its address
// across restarts (its URL appears in logs and in operators' psql history).
const portFile = "parley.port"

// freePort asks the kernel for a free loopback port. Another process may take
// it before postgres binds it; Start retries with a new one when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port can be bound on 127.0.0.1 right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// rememberedPort reads the port saved by a previous Start, 0 when none.
func rememberedPort(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, portFile))
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

func rememberPort(dir string, port int) error {
	path := filepath.Join(dir, portFile)
	if err := os.WriteFile(path, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		return fmt.Errorf("remember port: %w", err)
	}
	return nil
}

// ownerFile, in a TempDir, holds the pid of the process that created it.
const ownerFile = "owner.pid"

// TempDir creates a fresh temporary directory whose data subdirectory can
// serve as a throwaway cluster's Dir: the directory is made searchable by
// others so that, when running as root, the postgres user can reach the
// cluster inside it (os.MkdirTemp creates it 0700). The caller removes it.
//
// A process killed before removing its directory (a test timeout panics
// without deferred cleanup) leaves it behind; TempDir first removes the
// directories of the same pattern whose creator is dead and whose server
// is gone.
func TempDir(pattern string) (string, error) {
	sweepTempDirs(pattern)
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	return dir, nil
}

// sweepTempDirs removes abandoned TempDirs of pattern. Directories without
// an owner file (just being created) or with a live owner are kept.
func sweepTempDirs(pattern string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if pm := postmasterPID(filepath.Join(dir, "data")); pm > 0 && servesDir(pm, filepath.Join(dir, "data")) {
			continue
		}
		os.RemoveAll(dir)
	}
}

// processAlive reports whether pid exists (EPERM: it does, someone else's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
