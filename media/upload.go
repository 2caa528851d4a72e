package media

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Upload is content a user sends.
type Upload struct {
	Uploader    id.UserID
	ContentType string // the request's Content-Type; empty: application/octet-stream
	Filename    string // the filename query parameter; may be empty
	// Length is the declared size (Content-Length), -1 when unknown; a body
	// that turns out longer than the limit fails anyway.
	Length int64
	Body   io.Reader
}

// Upload stores content and returns its new mxc:// URI
// (POST /_matrix/media/v3/upload).
func (s *Service) Upload(ctx context.Context, u Upload) (MXC, error) {
	m, err := s.receive(ctx, u)
	if err != nil {
		return MXC{}, err
	}
	m.MXC = MXC{Server: s.cfg.ServerName, MediaID: NewID()}
	m.CreatedAt = m.UploadedAt
	if err := s.stores.Metadata.Record(ctx, m, s.cfg.UserQuota); err != nil {
		return MXC{}, err
	}
	s.pregenerate(m)
	return m.MXC, nil
}

// Create reserves a media id for a later upload (POST /_matrix/media/v1/create)
// and returns it with the time it expires unused.
func (s *Service) Create(ctx context.Context, user id.UserID) (MXC, time.Time, error) {
	now := s.now()
	m := Media{
		MXC:       MXC{Server: s.cfg.ServerName, MediaID: NewID()},
		Uploader:  user,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.UnusedExpiry),
	}
	if err := s.stores.Metadata.CreatePending(ctx, m, s.cfg.MaxPendingUploads); err != nil {
		return MXC{}, time.Time{}, err
	}
	return m.MXC, m.ExpiresAt, nil
}

// UploadTo stores the content of a media id made by Create
// (PUT /_matrix/media/v3/upload/{serverName}/{mediaId}).
func (s *Service) UploadTo(ctx context.Context, mxc MXC, u Upload) error {
	if !s.local(mxc) {
		return ErrNotFound
	}
	// Cheap refusals before reading the body.
	pending, err := s.stores.Metadata.Get(ctx, mxc)
	if err != nil {
		return err
	}
	switch {
	case pending.Uploader != u.Uploader:
		return ErrNotOwner
	case !pending.Pending():
		return ErrAlreadyUploaded
	case !pending.ExpiresAt.IsZero() && !s.now().Before(pending.ExpiresAt):
		return ErrNotFound
	}
	m, err := s.receive(ctx, u)
	if err != nil {
		return err
	}
	m.MXC = mxc
	if err := s.stores.Metadata.CompletePending(ctx, m, s.cfg.UserQuota); err != nil {
		return err
	}
	s.pregenerate(m)
	return nil
}

// receive validates an upload and streams its body into the blob store.
// Nothing is recorded: the caller makes the content visible.
func (s *Service) receive(ctx context.Context, u Upload) (Media, error) {
	contentType, err := normalizeContentType(u.ContentType)
	if err != nil {
		return Media{}, err
	}
	if !validFilename(u.Filename) {
		return Media{}, ErrBadFilename
	}
	limit := s.cfg.MaxUploadSize
	if u.Length > limit {
		return Media{}, ErrTooLarge
	}
	quotaLimited := false
	if s.cfg.UserQuota > 0 && u.Uploader != "" {
		used, err := s.stores.Metadata.UsedBytes(ctx, u.Uploader)
		if err != nil {
			return Media{}, err
		}
		left := s.cfg.UserQuota - used
		if left < 0 {
			left = 0
		}
		if u.Length > left {
			return Media{}, ErrQuotaExceeded
		}
		if left < limit {
			limit, quotaLimited = left, true
		}
	}
	body := &limitedBody{r: u.Body, left: limit, quota: quotaLimited}
	key, size, err := s.stores.Blobs.Put(ctx, body)
	if err != nil {
		if body.err != nil {
			return Media{}, body.err // the client's: too large, over quota, cut off
		}
		if ctx.Err() != nil {
			return Media{}, ctx.Err()
		}
		s.logger.ErrorContext(ctx, "media store put failed", slog.String("error", err.Error()))
		return Media{}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if u.Length >= 0 && size != u.Length {
		// Stored but never recorded: invisible, as a failed upload must be.
		return Media{}, mxerr.Unknown.WithStatus(http.StatusBadRequest).Msg("The upload is shorter than its Content-Length")
	}
	return Media{
		Uploader:    u.Uploader,
		ContentType: contentType,
		Filename:    u.Filename,
		Size:        size,
		Blob:        key,
		UploadedAt:  s.now(),
	}, nil
}

// limitedBody reads at most left bytes and remembers why reading failed,
// so that the client's errors are told apart from the store's.
type limitedBody struct {
	r     io.Reader
	left  int64
	quota bool // the limit is the quota, not the upload size
	err   error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		b.err = ErrTooLarge
		if b.quota {
			b.err = ErrQuotaExceeded
		}
		return 0, b.err
	}
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		// The client's connection ended early or broke: the Matrix error
		// is the domain's answer here, there is nothing to map.
		b.err = mxerr.Unknown.WithStatus(http.StatusBadRequest).Msg("The upload ended before all of its content arrived")
		return n, b.err
	}
	return n, err
}

// normalizeContentType checks a Content-Type and returns it in canonical
// form; empty means application/octet-stream (the spec's default).
func normalizeContentType(ct string) (string, error) {
	if strings.TrimSpace(ct) == "" {
		return "application/octet-stream", nil
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mediaType, "/") || len(ct) > 255 {
		return "", ErrBadContentType
	}
	out := mime.FormatMediaType(mediaType, params)
	if out == "" {
		return "", ErrBadContentType
	}
	return out, nil
}

// validFilename accepts names without control characters or path
// separators, up to 255 bytes; they end up in a response header.
func validFilename(name string) bool {
	if len(name) > 255 || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}
