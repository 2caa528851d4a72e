package config

import (
	"time"

	"github.com/parleyhq/parley/media"
)

// Media configures the content repository (issue #6).
type Media struct {
	// Backend is where media bytes live: filesystem (Directory) or s3.
	Backend string `yaml:"backend"`
	// Directory of the filesystem backend; empty means <data_dir>/media.
	Directory string  `yaml:"directory"`
	S3        MediaS3 `yaml:"s3"`
	// MaxUploadSize bounds one upload in bytes (M_TOO_LARGE beyond); it is
	// announced as m.upload.size.
	MaxUploadSize int64 `yaml:"max_upload_size"`
	// UserQuota bounds the bytes one user may have uploaded; 0: no quota.
	UserQuota int64 `yaml:"user_quota"`
	// MaxPendingUploads bounds a user's created but not yet uploaded media
	// ids (POST /_matrix/media/v1/create).
	MaxPendingUploads int `yaml:"max_pending_uploads"`
	// UnusedExpiry is how long a created media id waits for its upload.
	UnusedExpiry time.Duration `yaml:"unused_expiry"`
	// LegacyUnauthenticated serves the deprecated unauthenticated
	// /_matrix/media/v3/download and /thumbnail endpoints.
	LegacyUnauthenticated bool            `yaml:"legacy_unauthenticated"`
	Thumbnails            MediaThumbnails `yaml:"thumbnails"`
	Preview               MediaPreview    `yaml:"preview"`
}

// Media backends.
const (
	MediaFilesystem = "filesystem"
	MediaS3Backend  = "s3"
)

// MediaS3 says where the S3/MinIO bucket is.
type MediaS3 struct {
	Endpoint  string `yaml:"endpoint"` // host:port
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	Bucket    string `yaml:"bucket"`
	UseSSL    bool   `yaml:"use_ssl"`
	// PresignedRedirect answers downloads of at least this many bytes with
	// a redirect to a short-lived presigned URL of the bucket, after the
	// access check; 0 disables it (Parley streams every download).
	PresignedRedirect int64 `yaml:"presigned_redirect"`
}

// MediaThumbnails configures thumbnailing.
type MediaThumbnails struct {
	// Sizes are generated after each image upload: WxH-method, comma
	// separated (method crop or scale).
	Sizes string `yaml:"sizes"`
	// Dynamic generates a thumbnail of exactly the requested size when no
	// configured size fits, instead of the nearest configured one.
	Dynamic bool `yaml:"dynamic"`
	// MaxPixels refuses to decode larger images (width × height), read from
	// the header before decoding: the decompression bomb limit.
	MaxPixels int64 `yaml:"max_pixels"`
}

// MediaPreview configures URL previews (GET …/media/preview_url).
type MediaPreview struct {
	Enabled bool `yaml:"enabled"`
	// AllowPrivateAddresses lets previews fetch loopback, private,
	// link-local and other non-public addresses.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// MaxBytes bounds a fetched page or image.
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds fetching one URL with its redirects.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultMedia is the media part of Defaults.
func DefaultMedia() Media {
	return Media{
		Backend:           MediaFilesystem,
		MaxUploadSize:     100 << 20,
		MaxPendingUploads: 10,
		UnusedExpiry:      24 * time.Hour,
		Thumbnails: MediaThumbnails{
			// The spec's recommended set (Client-Server API, "Thumbnails").
			Sizes:     "32x32-crop,96x96-crop,320x240-scale,640x480-scale,800x600-scale",
			MaxPixels: 32_000_000,
		},
		Preview: MediaPreview{
			MaxBytes: 10 << 20,
			Timeout:  10 * time.Second,
		},
	}
}

// validate adds the media section's problems.
func (m *Media) validate(add func(format string, args ...any)) {
	switch m.Backend {
	case MediaFilesystem:
	case MediaS3Backend:
		for key, v := range map[string]string{
			"media.s3.endpoint": m.S3.Endpoint, "media.s3.bucket": m.S3.Bucket,
			"media.s3.access_key": m.S3.AccessKey, "media.s3.secret_key": m.S3.SecretKey,
		} {
			if v == "" {
				add("%s: must be set when media.backend is s3", key)
			}
		}
	default:
		add("media.backend: must be filesystem or s3, got %q", m.Backend)
	}
	if m.S3.PresignedRedirect < 0 {
		add("media.s3.presigned_redirect: must not be negative")
	}
	if m.MaxUploadSize < 1 {
		add("media.max_upload_size: must be positive, got %d", m.MaxUploadSize)
	}
	if m.UserQuota < 0 {
		add("media.user_quota: must not be negative (0: no quota)")
	}
	if m.MaxPendingUploads < 1 {
		add("media.max_pending_uploads: must be at least 1")
	}
	if m.UnusedExpiry <= 0 {
		add("media.unused_expiry: must be positive")
	}
	if _, err := media.ParseThumbnailSizes(m.Thumbnails.Sizes); err != nil {
		add("media.thumbnails.sizes: %v", err)
	}
	if m.Thumbnails.MaxPixels < 1 {
		add("media.thumbnails.max_pixels: must be positive")
	}
	if m.Preview.MaxBytes < 1024 {
		add("media.preview.max_bytes: must be at least 1024")
	}
	if m.Preview.Timeout <= 0 {
		add("media.preview.timeout: must be positive")
	}
}
