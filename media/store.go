package media

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/id"
)

// Media is the metadata of one piece of content.
type Media struct {
	MXC MXC
	// Uploader is the user who created it; empty for content the server
	// made itself (URL preview images), which counts against no quota.
	Uploader    id.UserID
	ContentType string
	Filename    string // as uploaded; empty when none was given
	Size        int64
	Blob        BlobKey // empty while pending
	CreatedAt   time.Time
	UploadedAt  time.Time
	// ExpiresAt is when a pending (created, not uploaded) media id expires.
	ExpiresAt time.Time
}

// Pending reports whether the content has not been uploaded yet.
func (m Media) Pending() bool { return m.Blob == "" }

// Thumbnail is a stored thumbnail of a Media.
type Thumbnail struct {
	MXC MXC
	// For is the size and method the thumbnail was made for.
	For         ThumbnailSize
	Animated    bool
	ContentType string
	Size        int64
	Blob        BlobKey
	CreatedAt   time.Time
}

// Errors of the stores, mapped to Matrix errors by the Service.
var (
	ErrNotFound        = errors.New("media: not found")
	ErrExists          = errors.New("media: media id already exists")
	ErrNotOwner        = errors.New("media: created by another user")
	ErrAlreadyUploaded = errors.New("media: already uploaded")
	ErrQuotaExceeded   = errors.New("media: upload quota exceeded")
	ErrTooManyPending  = errors.New("media: too many pending uploads")
)

// MetadataStore keeps media metadata (storage.Media implements it on
// Postgres).
type MetadataStore interface {
	// Record inserts uploaded media. With quota > 0 it refuses with
	// ErrQuotaExceeded when the uploader's bytes would exceed it; the check
	// and the insert are atomic per user.
	Record(ctx context.Context, m Media, quota int64) error
	// CreatePending inserts a media id without content, refusing with
	// ErrTooManyPending when the uploader has maxPending unexpired ones.
	CreatePending(ctx context.Context, m Media, maxPending int) error
	// CompletePending gives a pending media its content (m.Blob, Size,
	// ContentType, Filename, UploadedAt). ErrNotFound when it is unknown or
	// expired at m.UploadedAt, ErrNotOwner when m.Uploader did not create
	// it, ErrAlreadyUploaded when it has content, ErrQuotaExceeded as Record.
	CompletePending(ctx context.Context, m Media, quota int64) error
	// Get returns the media, pending or not, or ErrNotFound.
	Get(ctx context.Context, mxc MXC) (Media, error)
	// UsedBytes is the size of everything user uploaded.
	UsedBytes(ctx context.Context, user id.UserID) (int64, error)
	// DeleteExpiredPending removes pending media ids that expired before
	// now and returns how many.
	DeleteExpiredPending(ctx context.Context, now time.Time) (int64, error)
}

// ThumbnailStore keeps thumbnail metadata.
type ThumbnailStore interface {
	// Thumbnails lists the stored thumbnails of a media.
	Thumbnails(ctx context.Context, mxc MXC) ([]Thumbnail, error)
	// PutThumbnail records a thumbnail; one already recorded for the same
	// size, method and animation is kept.
	PutThumbnail(ctx context.Context, th Thumbnail) error
}

// PreviewStore caches URL previews.
type PreviewStore interface {
	// Preview returns the newest preview of url fetched at or after
	// notBefore; found is false when there is none.
	Preview(ctx context.Context, url string, notBefore time.Time) (og []byte, found bool, err error)
	// PutPreview records a preview.
	PutPreview(ctx context.Context, url string, og []byte, fetchedAt time.Time) error
}

// Stores is every store the Service needs.
type Stores struct {
	Metadata   MetadataStore
	Thumbnails ThumbnailStore
	Previews   PreviewStore
	Blobs      BlobStore
}
