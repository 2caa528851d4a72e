package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parleyhq/parley/storage/pgcluster"
)

// Server is a MinIO server this process started.
type Server struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string

	dir    string
	stop   chan struct{}
	exited chan struct{}
}

// Start runs a MinIO server with a throwaway data directory on a free
// loopback port and fresh credentials, and waits until it is live. It is
// killed when this process dies, even by SIGKILL (the parent-death signal),
// and Stop removes it with its data.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := pgcluster.TempDir("parley-minio-*")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s := &Server{AccessKey: "parley-" + randomHex(6), SecretKey: randomHex(20), dir: dir}
		if lastErr = s.start(ctx, bin); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *Server) start(ctx context.Context, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(s.dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("miniotest: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "server", filepath.Join(s.dir, "data"), "--address", s.Endpoint, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	s.stop, s.exited = make(chan struct{}), make(chan struct{})
	started := make(chan error, 1)
	// The parent-death signal fires when the thread that started the child
	// ends, not the process: start it from a locked thread that lives until
	// Stop.
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.exited)
			return
		}
		started <- nil
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited) }()
		select {
		case <-s.stop:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-waited
			}
		case <-waited:
		}
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("miniotest: start %s: %w", bin, err)
	}
	if err := s.waitLive(ctx); err != nil {
		s.Kill()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("miniotest: MinIO on %s: %w\n%s", s.Endpoint, err, log)
	}
	return nil
}

func (s *Server) waitLive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 1})
	if err != nil {
		return err
	}
	for {
		// The health endpoint answers before the object layer is up
		// ("Server not initialized yet"): ready means an S3 call works.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+"/minio/health/ready", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				if _, err := client.ListBuckets(ctx); err == nil {
					return nil
				}
			}
		}
		select {
		case <-s.exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Kill stops the server and waits for it, keeping its data directory (a
// test of a store going away mid-request).
func (s *Server) Kill() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.exited
}

// Stop kills the server and removes its data.
func (s *Server) Stop() error {
	s.Kill()
	return os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("miniotest: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
