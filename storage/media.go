package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/media"
)

// Media implements the metadata stores of package media on Postgres.
type Media struct {
	pool *pgxpool.Pool
}

// NewMedia returns the media stores on pool.
func NewMedia(pool *pgxpool.Pool) *Media { return &Media{pool: pool} }

var (
	_ media.MetadataStore  = (*Media)(nil)
	_ media.ThumbnailStore = (*Media)(nil)
	_ media.PreviewStore   = (*Media)(nil)
)

// nullString stores "" as NULL.
func nullString[T ~string](s T) *string {
	if s == "" {
		return nil
	}
	v := string(s)
	return &v
}

// lockUploader serialises the quota and pending checks of one user: two
// concurrent uploads must not both pass a check that only one of them may.
const lockUploader = `SELECT pg_advisory_xact_lock(hashtext('media:' || $1))`

const usedBytes = `SELECT coalesce(sum(size), 0)::bigint FROM media WHERE uploader = $1 AND blob_key IS NOT NULL`

// checkQuota runs in tx under lockUploader.
func checkQuota(ctx context.Context, tx pgx.Tx, m media.Media, quota int64) error {
	if quota <= 0 || m.Uploader == "" {
		return nil
	}
	var used int64
	if err := tx.QueryRow(ctx, usedBytes, string(m.Uploader)).Scan(&used); err != nil {
		return fmt.Errorf("media quota: %w", err)
	}
	if used+m.Size > quota {
		return media.ErrQuotaExceeded
	}
	return nil
}

const insertMedia = `
INSERT INTO media (server_name, media_id, uploader, content_type, filename, size, blob_key, created_ts, uploaded_ts, expires_ts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT DO NOTHING`

func insert(ctx context.Context, tx pgx.Tx, m media.Media) error {
	var size *int64
	if !m.Pending() {
		size = &m.Size
	}
	tag, err := tx.Exec(ctx, insertMedia, string(m.MXC.Server), string(m.MXC.MediaID), nullString(m.Uploader),
		m.ContentType, nullString(m.Filename), size, nullString(m.Blob), m.CreatedAt.UnixMilli(),
		ms(m.UploadedAt), ms(m.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert media %s: %w", m.MXC, err)
	}
	if tag.RowsAffected() == 0 {
		return media.ErrExists
	}
	return nil
}

// Record implements media.MetadataStore.
func (s *Media) Record(ctx context.Context, m media.Media, quota int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if m.Uploader != "" {
			if _, err := tx.Exec(ctx, lockUploader, string(m.Uploader)); err != nil {
				return fmt.Errorf("media lock: %w", err)
			}
		}
		if err := checkQuota(ctx, tx, m, quota); err != nil {
			return err
		}
		return insert(ctx, tx, m)
	})
}

const countPending = `
SELECT count(*) FROM media
WHERE uploader = $1 AND blob_key IS NULL AND expires_ts > $2`

// CreatePending implements media.MetadataStore.
func (s *Media) CreatePending(ctx context.Context, m media.Media, maxPending int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockUploader, string(m.Uploader)); err != nil {
			return fmt.Errorf("media lock: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, countPending, string(m.Uploader), m.CreatedAt.UnixMilli()).Scan(&n); err != nil {
			return fmt.Errorf("count pending media: %w", err)
		}
		if n >= maxPending {
			return media.ErrTooManyPending
		}
		return insert(ctx, tx, m)
	})
}

const selectPendingForUpdate = `
SELECT uploader, blob_key, expires_ts FROM media
WHERE server_name = $1 AND media_id = $2 FOR UPDATE`

const completePending = `
UPDATE media SET content_type = $3, filename = $4, size = $5, blob_key = $6, uploaded_ts = $7, expires_ts = NULL
WHERE server_name = $1 AND media_id = $2`

// CompletePending implements media.MetadataStore.
func (s *Media) CompletePending(ctx context.Context, m media.Media, quota int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockUploader, string(m.Uploader)); err != nil {
			return fmt.Errorf("media lock: %w", err)
		}
		var uploader, blob *string
		var expires *int64
		err := tx.QueryRow(ctx, selectPendingForUpdate, string(m.MXC.Server), string(m.MXC.MediaID)).Scan(&uploader, &blob, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return media.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("select pending media %s: %w", m.MXC, err)
		}
		switch {
		case uploader == nil || *uploader != string(m.Uploader):
			return media.ErrNotOwner
		case blob != nil:
			return media.ErrAlreadyUploaded
		case expires != nil && *expires <= m.UploadedAt.UnixMilli():
			return media.ErrNotFound
		}
		if err := checkQuota(ctx, tx, m, quota); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, completePending, string(m.MXC.Server), string(m.MXC.MediaID), m.ContentType,
			nullString(m.Filename), m.Size, string(m.Blob), m.UploadedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("complete media %s: %w", m.MXC, err)
		}
		return nil
	})
}

const selectMedia = `
SELECT uploader, content_type, filename, size, blob_key, created_ts, uploaded_ts, expires_ts
FROM media WHERE server_name = $1 AND media_id = $2`

// Get implements media.MetadataStore.
func (s *Media) Get(ctx context.Context, mxc media.MXC) (media.Media, error) {
	m := media.Media{MXC: mxc}
	var uploader, filename, blob *string
	var size, uploaded, expires *int64
	var created int64
	err := s.pool.QueryRow(ctx, selectMedia, string(mxc.Server), string(mxc.MediaID)).
		Scan(&uploader, &m.ContentType, &filename, &size, &blob, &created, &uploaded, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return media.Media{}, media.ErrNotFound
	}
	if err != nil {
		return media.Media{}, fmt.Errorf("select media %s: %w", mxc, err)
	}
	if uploader != nil {
		m.Uploader = id.UserID(*uploader)
	}
	if filename != nil {
		m.Filename = *filename
	}
	if size != nil {
		m.Size = *size
	}
	if blob != nil {
		m.Blob = media.BlobKey(*blob)
	}
	m.CreatedAt = time.UnixMilli(created)
	m.UploadedAt = fromMS(uploaded)
	m.ExpiresAt = fromMS(expires)
	return m, nil
}

// UsedBytes implements media.MetadataStore.
func (s *Media) UsedBytes(ctx context.Context, user id.UserID) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, usedBytes, string(user)).Scan(&n); err != nil {
		return 0, fmt.Errorf("media used bytes: %w", err)
	}
	return n, nil
}

const deleteExpiredPending = `DELETE FROM media WHERE blob_key IS NULL AND expires_ts <= $1`

// DeleteExpiredPending implements media.MetadataStore.
func (s *Media) DeleteExpiredPending(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, deleteExpiredPending, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("delete expired media ids: %w", err)
	}
	return tag.RowsAffected(), nil
}
