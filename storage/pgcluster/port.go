package pgcluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// TempDir creates a fresh temporary directory whose data subdirectory can
// serve as a throwaway cluster's Dir: the directory is made searchable by
// others so that, when running as root, the postgres user can reach the
// cluster inside it (os.MkdirTemp creates it 0700). The caller removes it.
func TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	return dir, nil
}
