package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/blobs3"
)

// mediaJanitorInterval is how often expired unused media ids are deleted.
const mediaJanitorInterval = 10 * time.Minute

// openMedia builds the content repository on the configured blob store
// (media.backend) and the Postgres metadata store, and starts its janitor.
func (a *App) openMedia(ctx context.Context) (*media.Service, error) {
	cfg := a.cfg.Media
	var blobs media.BlobStore
	switch cfg.Backend {
	case config.MediaS3Backend:
		s, err := blobs3.New(ctx, blobs3.Config{
			Endpoint: cfg.S3.Endpoint, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
			Bucket: cfg.S3.Bucket, UseSSL: cfg.S3.UseSSL,
		})
		if err != nil {
			return nil, fmt.Errorf("media.s3: %w", err)
		}
		blobs = s
	default:
		dir := cfg.Directory
		if dir == "" {
			dir = filepath.Join(a.cfg.DataDir, "media")
		}
		s, err := media.NewFSStore(dir)
		if err != nil {
			return nil, fmt.Errorf("media.directory: %w", err)
		}
		blobs = s
	}
	sizes, err := media.ParseThumbnailSizes(cfg.Thumbnails.Sizes)
	if err != nil {
		return nil, fmt.Errorf("media.thumbnails.sizes: %w", err)
	}
	meta := storage.NewMedia(a.db.Pool)
	svc, err := media.New(media.Config{
		ServerName:        a.cfg.ServerName,
		MaxUploadSize:     cfg.MaxUploadSize,
		UserQuota:         cfg.UserQuota,
		MaxPendingUploads: cfg.MaxPendingUploads,
		UnusedExpiry:      cfg.UnusedExpiry,
		ThumbnailSizes:    sizes,
		DynamicThumbnails: cfg.Thumbnails.Dynamic,
		MaxImagePixels:    cfg.Thumbnails.MaxPixels,
		PresignedRedirect: cfg.S3.PresignedRedirect,
		Preview: media.PreviewConfig{
			Enabled:               cfg.Preview.Enabled,
			AllowPrivateAddresses: cfg.Preview.AllowPrivateAddresses,
			MaxBytes:              cfg.Preview.MaxBytes,
			Timeout:               cfg.Preview.Timeout,
		},
	}, media.Stores{Metadata: meta, Thumbnails: meta, Previews: meta, Blobs: blobs}, a.logger)
	if err != nil {
		return nil, err
	}
	janitorCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.stopMedia = cancel
	go svc.RunJanitor(janitorCtx, mediaJanitorInterval)
	return svc, nil
}
