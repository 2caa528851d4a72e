package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/id"
)

// Config is what the Service needs from the configuration (app builds it
// from config.Media).
type Config struct {
	ServerName        id.ServerName
	MaxUploadSize     int64
	UserQuota         int64 // 0: none
	MaxPendingUploads int
	UnusedExpiry      time.Duration
	ThumbnailSizes    []ThumbnailSize
	DynamicThumbnails bool
	MaxImagePixels    int64
	// PresignedRedirect: downloads of at least this many bytes from a
	// store that can presign are answered with a redirect; 0: never.
	PresignedRedirect int64
	Preview           PreviewConfig
}

// Errors of the Service that the edge maps to Matrix errors (besides the
// store errors in store.go).
var (
	ErrTooLarge          = errors.New("media: content is larger than the upload limit")
	ErrNotYetUploaded    = errors.New("media: content not yet uploaded")
	ErrCannotThumbnail   = errors.New("media: cannot thumbnail this content")
	ErrImageTooLarge     = errors.New("media: image too large to thumbnail")
	ErrBadContentType    = errors.New("media: invalid content type")
	ErrBadFilename       = errors.New("media: invalid file name")
	ErrStoreUnavailable  = errors.New("media: the media store is unavailable")
	ErrPreviewDisabled   = errors.New("media: URL previews are disabled")
	ErrPreviewForbidden  = errors.New("media: URL not allowed for previews")
	ErrPreviewFailed     = errors.New("media: could not preview the URL")
	ErrBadThumbnailParam = errors.New("media: invalid thumbnail parameters")
)

// Service is the content repository.
type Service struct {
	cfg    Config
	stores Stores
	logger *slog.Logger
	now    func() time.Time

	preview *previewer
	// remote fetches other servers' media (remote.go); nil until SetRemote.
	remote *remoteCache

	background sync.WaitGroup // pre-generation of thumbnails
	thumbSlots chan struct{}  // bounds concurrent image decoding
	stop       chan struct{}
	closeOnce  sync.Once
}

// New builds the Service. Close stops its background work.
func New(cfg Config, stores Stores, logger *slog.Logger) (*Service, error) {
	if stores.Metadata == nil || stores.Thumbnails == nil || stores.Previews == nil || stores.Blobs == nil {
		return nil, errors.New("media: every store is required")
	}
	if cfg.MaxUploadSize <= 0 || cfg.MaxImagePixels <= 0 || cfg.UnusedExpiry <= 0 || cfg.MaxPendingUploads <= 0 {
		return nil, fmt.Errorf("media: incomplete configuration %+v", cfg)
	}
	s := &Service{
		cfg:        cfg,
		stores:     stores,
		logger:     logger,
		now:        time.Now,
		thumbSlots: make(chan struct{}, 2),
		stop:       make(chan struct{}),
	}
	s.preview = newPreviewer(cfg.Preview)
	return s, nil
}

// MaxUploadSize is announced as m.upload.size.
func (s *Service) MaxUploadSize() int64 { return s.cfg.MaxUploadSize }

// ServerName is the server of media uploaded here.
func (s *Service) ServerName() id.ServerName { return s.cfg.ServerName }

// RunJanitor deletes expired unused media ids every interval until ctx is
// done or Close is called. Uploads check expiry themselves; this only
// keeps the table small.
func (s *Service) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case <-t.C:
			if n, err := s.stores.Metadata.DeleteExpiredPending(ctx, s.now()); err != nil {
				s.logger.WarnContext(ctx, "delete expired media ids", slog.String("error", err.Error()))
			} else if n > 0 {
				s.logger.InfoContext(ctx, "deleted expired media ids", slog.Int64("count", n))
			}
		}
	}
}

// Close stops the janitor and waits for background thumbnailing.
func (s *Service) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	s.background.Wait()
}

// local reports whether mxc is this server's media. Remote media comes
// over federation through the RemoteFetcher (remote.go), which fills the
// local store.
func (s *Service) local(mxc MXC) bool { return mxc.Server == s.cfg.ServerName }
