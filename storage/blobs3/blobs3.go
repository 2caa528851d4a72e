// Package blobs3 is the media.BlobStore on MinIO or any S3-compatible
// service (media.backend: s3), through minio-go. Blobs live at
// blobs/<sha256>; uploads stream into tmp/<random> as a multipart upload
// (one part buffered at a time) and are copied server-side to their
// content address once their hash is known, so that a failed upload never
// shows under a key.
package blobs3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/parleyhq/parley/media"
)

// Config says where the bucket is.
type Config struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	UseSSL    bool
	Region    string // optional; empty lets the client discover it
}

// partSize is the multipart part size: the memory one upload holds at
// most. S3 allows parts of 5 MiB and more and 10,000 parts, so objects of
// up to 80 GB.
const partSize = 8 << 20

const (
	blobPrefix = "blobs/"
	tmpPrefix  = "tmp/"
)

// Store is a media.BlobStore in one bucket.
type Store struct {
	client *minio.Client
	bucket string
}

var _ media.BlobStore = (*Store)(nil)

// New connects to the service and creates the bucket if it is missing,
// with a lifecycle rule that expires temporary objects abandoned by a
// crash after a day.
func New(ctx context.Context, cfg Config) (*Store, error) {
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.Region,
		// Few retries: a store that is down must fail the upload within
		// seconds with a clear error, not hold the client for a minute.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", cfg.Endpoint, err)
	}
	s := &Store{client: client, bucket: cfg.Bucket}
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 %s bucket %s: %w", cfg.Endpoint, cfg.Bucket, err)
	}
	if !exists {
		err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return nil, fmt.Errorf("s3 %s: create bucket %s: %w", cfg.Endpoint, cfg.Bucket, err)
		}
	}
	rules := lifecycle.NewConfiguration()
	rules.Rules = []lifecycle.Rule{{
		ID:         "parley-expire-tmp",
		Status:     "Enabled",
		RuleFilter: lifecycle.Filter{Prefix: tmpPrefix},
		Expiration: lifecycle.Expiration{Days: 1},
		AbortIncompleteMultipartUpload: lifecycle.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: 1,
		},
	}}
	// Best effort: some S3 services refuse lifecycle rules; uploads work
	// without them, leftovers just stay.
	_ = client.SetBucketLifecycle(ctx, cfg.Bucket, rules)
	return s, nil
}

// Put implements media.BlobStore.
func (s *Store) Put(ctx context.Context, r io.Reader) (media.BlobKey, int64, error) {
	tmp := tmpPrefix + randomName()
	hr := media.NewHashingReader(r)
	_, err := s.client.PutObject(ctx, s.bucket, tmp, hr, -1, minio.PutObjectOptions{
		PartSize:    partSize,
		ContentType: "application/octet-stream",
	})
	// The temporary object goes whatever happens next; with a cancelled
	// request context, removing it still needs a live one.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.client.RemoveObject(rctx, s.bucket, tmp, minio.RemoveObjectOptions{})
	}()
	if err != nil {
		return "", 0, fmt.Errorf("s3 upload: %w", err)
	}
	key := hr.Key()
	final := blobPrefix + string(key)
	if _, err := s.client.StatObject(ctx, s.bucket, final, minio.StatObjectOptions{}); err == nil {
		return key, hr.Size(), nil // stored before: one copy is enough
	} else if !isNotFound(err) {
		return "", 0, fmt.Errorf("s3 stat: %w", err)
	}
	_, err = s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: final},
		minio.CopySrcOptions{Bucket: s.bucket, Object: tmp})
	if err != nil {
		return "", 0, fmt.Errorf("s3 copy to %s: %w", final, err)
	}
	return key, hr.Size(), nil
}

// Open implements media.BlobStore. The returned object fetches lazily;
// each Seek followed by a Read is one ranged GET.
func (s *Store) Open(ctx context.Context, key media.BlobKey) (media.Blob, error) {
	if !media.ValidBlobKey(key) {
		return nil, media.ErrBlobNotFound
	}
	obj, err := s.client.GetObject(ctx, s.bucket, blobPrefix+string(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3 get: %w", err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if isNotFound(err) {
			return nil, media.ErrBlobNotFound
		}
		return nil, fmt.Errorf("s3 stat: %w", err)
	}
	return obj, nil
}

// PresignedURL returns a URL that downloads the blob without credentials
// until expiry, for serving large downloads by redirect.
func (s *Store) PresignedURL(ctx context.Context, key media.BlobKey, expiry time.Duration) (string, error) {
	if !media.ValidBlobKey(key) {
		return "", media.ErrBlobNotFound
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, blobPrefix+string(key), expiry, nil)
	if err != nil {
		return "", fmt.Errorf("s3 presign: %w", err)
	}
	return u.String(), nil
}

func isNotFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound
}

func randomName() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
