package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
)

// BlobKey names stored bytes: the lowercase hex SHA-256 of the content.
// Identical uploads have the same key and are stored once.
type BlobKey string

// ValidBlobKey reports whether k looks like a SHA-256 hex digest; stores use
// it before turning a key into a path or an object name.
func ValidBlobKey(k BlobKey) bool {
	if len(k) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ErrBlobNotFound is returned by BlobStore.Open for an unknown key.
var ErrBlobNotFound = errors.New("media: blob not found")

// BlobStore keeps the bytes of media and thumbnails. Implementations:
// FSStore (a directory) and storage/blobs3 (MinIO or any S3).
type BlobStore interface {
	// Put streams r into the store without holding it in memory and
	// returns its key and size. The bytes become visible under the key
	// only once all of r has been read and stored: a failed or cancelled
	// Put (r returning an error, the store going away) leaves nothing
	// under any key. Putting bytes that are already stored succeeds and
	// keeps one copy.
	Put(ctx context.Context, r io.Reader) (BlobKey, int64, error)
	// Open returns the bytes under key for reading and seeking (range
	// requests), or ErrBlobNotFound.
	Open(ctx context.Context, key BlobKey) (Blob, error)
}

// Blob is stored content being read.
type Blob interface {
	io.ReadSeekCloser
}

// HashingReader reads through to R and hashes what it read; stores use it
// to learn the key of what they stream.
type HashingReader struct {
	R io.Reader
	h hash.Hash
	n int64
}

// NewHashingReader wraps r.
func NewHashingReader(r io.Reader) *HashingReader {
	return &HashingReader{R: r, h: sha256.New()}
}

func (h *HashingReader) Read(p []byte) (int, error) {
	n, err := h.R.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
	}
	return n, err
}

// Key is the BlobKey of everything read so far.
func (h *HashingReader) Key() BlobKey { return BlobKey(hex.EncodeToString(h.h.Sum(nil))) }

// Size is the number of bytes read so far.
func (h *HashingReader) Size() int64 { return h.n }
