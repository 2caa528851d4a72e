// Package blobstoretest is the contract test every media.BlobStore passes:
// the filesystem store and the MinIO store run the same checks.
package blobstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/parleyhq/parley/media"
)

// Run checks the BlobStore contract on stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) media.BlobStore) {
	ctx := context.Background()

	t.Run("put then open returns the bytes under their sha256", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 300_000)
		key, size, err := s.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if want := media.BlobKey(hex.EncodeToString(sum[:])); key != want {
			t.Errorf("key %s, want %s", key, want)
		}
		if size != int64(len(data)) {
			t.Errorf("size %d, want %d", size, len(data))
		}
		if got := readAll(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("read %d bytes back, not the %d stored", len(got), len(data))
		}
	})

	t.Run("identical content is stored once under one key", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 1000)
		k1, _, err := s.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		k2, _, err := s.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if k1 != k2 {
			t.Errorf("keys differ: %s, %s", k1, k2)
		}
		if got := readAll(t, s, k2); !bytes.Equal(got, data) {
			t.Error("content changed by the second put")
		}
	})

	t.Run("empty content", func(t *testing.T) {
		s := newStore(t)
		key, size, err := s.Put(ctx, bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		if size != 0 || len(readAll(t, s, key)) != 0 {
			t.Errorf("size %d", size)
		}
	})

	t.Run("seek reads a range", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 10_000)
		key, _, err := s.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Seek(5000, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 100)
		if _, err := io.ReadFull(b, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[5000:5100]) {
			t.Error("bytes after Seek differ from the stored range")
		}
		end, err := b.Seek(0, io.SeekEnd)
		if err != nil || end != int64(len(data)) {
			t.Errorf("Seek(0, End) = %d, %v; want %d", end, err, len(data))
		}
	})

	t.Run("a failing reader leaves nothing visible", func(t *testing.T) {
		s := newStore(t)
		data := random(t, 200_000)
		broken := io.MultiReader(bytes.NewReader(data[:100_000]), errReader{})
		if _, _, err := s.Put(ctx, broken); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		for _, part := range [][]byte{data[:100_000], data[:0]} {
			sum := sha256.Sum256(part)
			if _, err := s.Open(ctx, media.BlobKey(hex.EncodeToString(sum[:]))); !errors.Is(err, media.ErrBlobNotFound) {
				t.Errorf("a prefix of a failed put is visible: %v", err)
			}
		}
	})

	t.Run("a cancelled context stops the put", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(random(t, 100_000)), n: 50_000, cancel: cancel}
		if _, _, err := s.Put(cctx, r); err == nil {
			t.Fatal("Put succeeded after its context was cancelled")
		}
	})

	t.Run("unknown and malformed keys are not found", func(t *testing.T) {
		s := newStore(t)
		for _, k := range []media.BlobKey{
			media.BlobKey(hex.EncodeToString(make([]byte, 32))),
			"../../etc/passwd",
			"",
		} {
			if _, err := s.Open(ctx, k); !errors.Is(err, media.ErrBlobNotFound) {
				t.Errorf("Open(%q) = %v, want ErrBlobNotFound", k, err)
			}
		}
	})
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, s media.BlobStore, key media.BlobKey) []byte {
	t.Helper()
	b, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// cancelAfter cancels its context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.read >= c.n {
		c.cancel()
	}
	if len(p) > 1000 {
		p = p[:1000]
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}
