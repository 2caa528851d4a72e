package blobs3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/media/blobstoretest"
	"github.com/parleyhq/parley/storage/blobs3"
	"github.com/parleyhq/parley/storage/miniotest"
)

func newStore(t *testing.T, cfg blobs3.Config) *blobs3.Store {
	t.Helper()
	s, err := blobs3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreContract(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) media.BlobStore {
		return newStore(t, miniotest.Config(t))
	})
}

func TestBucketCreatedOnceAndReused(t *testing.T) {
	cfg := miniotest.Config(t)
	first := newStore(t, cfg)
	key, _, err := first.Put(context.Background(), bytes.NewReader([]byte("kept")))
	if err != nil {
		t.Fatal(err)
	}
	second := newStore(t, cfg) // the bucket exists now
	b, err := second.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("a second store on the same bucket does not see the blob: %v", err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "kept" {
		t.Errorf("read %q", got)
	}
}

// A blob larger than one part goes up as a multipart upload.
func TestMultipartBlob(t *testing.T) {
	s := newStore(t, miniotest.Config(t))
	data := make([]byte, 20<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	key, size, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(data)) {
		t.Fatalf("size %d", size)
	}
	b, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, err %v; not identical", len(got), err)
	}
}

func TestPresignedURL(t *testing.T) {
	s := newStore(t, miniotest.Config(t))
	key, _, err := s.Put(context.Background(), bytes.NewReader([]byte("public for a while")))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignedURL(context.Background(), key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpGet(u)
	if err != nil {
		t.Fatal(err)
	}
	if res != "public for a while" {
		t.Errorf("presigned URL served %q", res)
	}
}

func TestServerDown(t *testing.T) {
	srv := miniotest.Private(t)
	s := newStore(t, srv.Config("down"))
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := s.Put(ctx, bytes.NewReader([]byte("lost"))); err == nil {
		t.Fatal("Put succeeded with the server down")
	}
	if _, err := s.Open(ctx, media.BlobKey("0000000000000000000000000000000000000000000000000000000000000000")); err == nil || errors.Is(err, media.ErrBlobNotFound) {
		t.Errorf("Open with the server down = %v, want an error that is not 'not found'", err)
	}
}
