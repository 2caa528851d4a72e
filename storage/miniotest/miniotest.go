// Package miniotest is the test harness for the S3 media backend, as
// pgtest is for PostgreSQL. Tests never skip for lack of MinIO.
//
// Where the server comes from, in order:
//  1. PARLEY_TEST_S3_ENDPOINT, PARLEY_TEST_S3_ACCESS_KEY and
//     PARLEY_TEST_S3_SECRET_KEY (PARLEY_TEST_S3_USE_SSL optional): a running
//     MinIO or S3. `go run ./storage/pgtest/pgtestrun -- go test ./...`
//     (make test) sets them to one MinIO shared by all test binaries.
//  2. Otherwise a private MinIO for this test binary, started on first use
//     (see Start), killed when the binary exits.
//
// Every Config call gets a bucket of its own, emptied and removed when the
// test ends.
package miniotest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/parleyhq/parley/storage/blobs3"
)

// The environment variables that point the harness at a running server.
const (
	EnvEndpoint  = "PARLEY_TEST_S3_ENDPOINT"
	EnvAccessKey = "PARLEY_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "PARLEY_TEST_S3_SECRET_KEY"
	EnvUseSSL    = "PARLEY_TEST_S3_USE_SSL"
)

// Env is the environment that points test binaries at s.
func (s *Server) Env() []string {
	return []string{EnvEndpoint + "=" + s.Endpoint, EnvAccessKey + "=" + s.AccessKey, EnvSecretKey + "=" + s.SecretKey}
}

var (
	once     sync.Once
	shared   blobs3.Config
	setupErr error
	buckets  atomic.Int64
	prefix   = "parley-test-" + strconv.Itoa(os.Getpid()) + "-" + randomHex(3)
)

func server() (blobs3.Config, error) {
	once.Do(func() {
		if ep := os.Getenv(EnvEndpoint); ep != "" {
			useSSL, _ := strconv.ParseBool(os.Getenv(EnvUseSSL))
			shared = blobs3.Config{Endpoint: ep, AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey), UseSSL: useSSL}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a first build takes minutes
		defer cancel()
		s, err := Start(ctx)
		if err != nil {
			setupErr = fmt.Errorf("%w (set %s to use a running one)", err, EnvEndpoint)
			return
		}
		// Killed with this process (parent-death signal); its directory is
		// swept by a later run.
		shared = blobs3.Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
	})
	return shared, setupErr
}

// Config returns the configuration of a new, empty bucket on the test
// server; the bucket is created by blobs3.New and removed with its objects
// when the test ends.
func Config(t testing.TB) blobs3.Config {
	t.Helper()
	cfg, err := server()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	cfg.Bucket = fmt.Sprintf("%s-%d", prefix, buckets.Add(1))
	t.Cleanup(func() {
		if err := removeBucket(cfg); err != nil {
			t.Errorf("miniotest: %v", err)
		}
	})
	return cfg
}

// Private starts a MinIO for this test alone, stopped when the test ends:
// for tests that stop the server on purpose.
func Private(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Config is the configuration of a bucket on s.
func (s *Server) Config(bucket string) blobs3.Config {
	return blobs3.Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Bucket: bucket}
}

// removeBucket empties and removes a test bucket; a bucket never created
// is fine.
func removeBucket(cfg blobs3.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: cfg.UseSSL})
	if err != nil {
		return err
	}
	if ok, err := c.BucketExists(ctx, cfg.Bucket); err != nil || !ok {
		return err
	}
	objects := c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true})
	for e := range c.RemoveObjects(ctx, cfg.Bucket, objects, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			return fmt.Errorf("remove %s: %w", e.ObjectName, e.Err)
		}
	}
	return c.RemoveBucket(ctx, cfg.Bucket)
}
