package miniotest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
)

// Version is the MinIO server the tests run, built from source with
// `go install github.com/minio/minio@Version` (MinIO publishes no semver
// tags; this is the pseudo-version of a RELEASE commit).
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// EnvBinary, when set, names a minio binary to use instead of building one.
const EnvBinary = "PARLEY_TEST_MINIO_BINARY"

// Binary returns the path of the MinIO server binary: EnvBinary, else the
// one cached in <user cache dir>/parley/minio/<Version>/minio, built there
// on first use (minutes; once per machine). A file lock makes parallel test
// binaries wait for one build instead of running several.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("miniotest: no cache directory (set %s): %w", EnvBinary, err)
	}
	dir := filepath.Join(cache, "parley", "minio", Version)
	bin := filepath.Join(dir, "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("miniotest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("miniotest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("miniotest: lock %s: %w", dir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	cmd := exec.CommandContext(ctx, goBin, "install", "github.com/minio/minio@"+Version)
	cmd.Dir = os.TempDir() // outside any module: go install pkg@version builds it on its own
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("miniotest: build MinIO %s (set %s to use a built one): %w\n%s", Version, EnvBinary, err, out)
	}
	return bin, nil
}
