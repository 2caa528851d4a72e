package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FSStore is a BlobStore in a directory: blobs at <dir>/ab/cd/<key>, files
// being written in <dir>/tmp until they are complete. It is the embedded
// default (media.backend: filesystem).
type FSStore struct {
	dir string
}

var _ BlobStore = (*FSStore)(nil)

// NewFSStore opens (creating it if needed) the store in dir.
func NewFSStore(dir string) (*FSStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("media store %s: %w", dir, err)
	}
	return &FSStore{dir: dir}, nil
}

func (s *FSStore) path(key BlobKey) string {
	k := string(key)
	return filepath.Join(s.dir, k[0:2], k[2:4], k)
}

// Put implements BlobStore: write to a temporary file, fsync, then rename
// into place, so that a reader never sees a partial file and a crash leaves
// only a temporary file behind.
func (s *FSStore) Put(ctx context.Context, r io.Reader) (BlobKey, int64, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("media store: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	hr := NewHashingReader(ctxReader{ctx, r})
	if _, err := io.Copy(tmp, hr); err != nil {
		return "", 0, fmt.Errorf("media store: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("media store: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("media store: close: %w", err)
	}
	key := hr.Key()
	final := s.path(key)
	if _, err := os.Stat(final); err == nil {
		return key, hr.Size(), nil // already stored: the deferred cleanup drops the copy
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return "", 0, fmt.Errorf("media store: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, fmt.Errorf("media store: %w", err)
	}
	committed = true
	if d, err := os.Open(filepath.Dir(final)); err == nil {
		_ = d.Sync() // make the rename durable
		d.Close()
	}
	return key, hr.Size(), nil
}

// Open implements BlobStore.
func (s *FSStore) Open(_ context.Context, key BlobKey) (Blob, error) {
	if !ValidBlobKey(key) {
		return nil, ErrBlobNotFound
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrBlobNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("media store: %w", err)
	}
	return f, nil
}

// ctxReader stops a copy when ctx is done (a client that went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
