package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Content is media being served: its metadata and its bytes, or a URL to
// redirect to. The caller closes Body.
type Content struct {
	Media
	Body Blob
	// RedirectURL, when set, replaces Body: a short-lived presigned URL.
	RedirectURL string
}

// Presigner is implemented by blob stores that can hand out short-lived
// URLs to a blob (S3); the Service uses it for large downloads when
// configured.
type Presigner interface {
	PresignedURL(ctx context.Context, key BlobKey, expiry time.Duration) (string, error)
}

// presignExpiry is how long a download redirect stays valid.
const presignExpiry = 5 * time.Minute

// pollInterval is how often a download waiting for a pending upload looks
// again.
const pollInterval = 200 * time.Millisecond

// Download returns the content of mxc. A pending upload is waited for up to
// wait, then ErrNotYetUploaded (spec: timeout_ms, M_NOT_YET_UPLOADED).
func (s *Service) Download(ctx context.Context, mxc MXC, wait time.Duration) (Content, error) {
	m, err := s.uploaded(ctx, mxc, wait)
	if err != nil {
		return Content{}, err
	}
	if p, ok := s.stores.Blobs.(Presigner); ok && s.cfg.PresignedRedirect > 0 && m.Size >= s.cfg.PresignedRedirect {
		u, err := p.PresignedURL(ctx, m.Blob, presignExpiry)
		if err != nil {
			return Content{}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		return Content{Media: m, RedirectURL: u}, nil
	}
	b, err := s.openBlob(ctx, m.Blob)
	if err != nil {
		return Content{}, err
	}
	return Content{Media: m, Body: b}, nil
}

func (s *Service) openBlob(ctx context.Context, key BlobKey) (Blob, error) {
	b, err := s.stores.Blobs.Open(ctx, key)
	if errors.Is(err, ErrBlobNotFound) {
		// Recorded but gone from the store: an operator's doing.
		return nil, fmt.Errorf("media blob %s missing from the store: %w", key, ErrNotFound)
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "media store open failed", slog.String("blob", string(key)), slog.String("error", err.Error()))
		return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return b, nil
}

// uploaded returns the metadata of local, uploaded media, waiting up to
// wait for a pending one.
func (s *Service) uploaded(ctx context.Context, mxc MXC, wait time.Duration) (Media, error) {
	if !s.local(mxc) {
		return s.remoteMedia(ctx, mxc)
	}
	deadline := time.Now().Add(wait)
	for {
		m, err := s.stores.Metadata.Get(ctx, mxc)
		if err != nil {
			return Media{}, err
		}
		if !m.Pending() {
			return m, nil
		}
		if !m.ExpiresAt.IsZero() && !s.now().Before(m.ExpiresAt) {
			return Media{}, ErrNotFound
		}
		if !time.Now().Before(deadline) {
			return Media{}, ErrNotYetUploaded
		}
		t := time.NewTimer(min(pollInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return Media{}, ctx.Err()
		case <-t.C:
		}
	}
}
