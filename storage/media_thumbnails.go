package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/media"
)

const selectThumbnails = `
SELECT width, height, method, animated, content_type, size, blob_key, created_ts
FROM media_thumbnails WHERE server_name = $1 AND media_id = $2`

// Thumbnails implements media.ThumbnailStore.
func (s *Media) Thumbnails(ctx context.Context, mxc media.MXC) ([]media.Thumbnail, error) {
	rows, err := s.pool.Query(ctx, selectThumbnails, string(mxc.Server), string(mxc.MediaID))
	if err != nil {
		return nil, fmt.Errorf("select thumbnails of %s: %w", mxc, err)
	}
	defer rows.Close()
	var out []media.Thumbnail
	for rows.Next() {
		th := media.Thumbnail{MXC: mxc}
		var blob string
		var created int64
		if err := rows.Scan(&th.For.Width, &th.For.Height, &th.For.Method, &th.Animated,
			&th.ContentType, &th.Size, &blob, &created); err != nil {
			return nil, fmt.Errorf("scan thumbnail: %w", err)
		}
		th.Blob = media.BlobKey(blob)
		th.CreatedAt = time.UnixMilli(created)
		out = append(out, th)
	}
	return out, rows.Err()
}

const insertThumbnail = `
INSERT INTO media_thumbnails (server_name, media_id, width, height, method, animated, content_type, size, blob_key, created_ts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT DO NOTHING`

// PutThumbnail implements media.ThumbnailStore.
func (s *Media) PutThumbnail(ctx context.Context, th media.Thumbnail) error {
	_, err := s.pool.Exec(ctx, insertThumbnail, string(th.MXC.Server), string(th.MXC.MediaID),
		th.For.Width, th.For.Height, th.For.Method, th.Animated, th.ContentType, th.Size,
		string(th.Blob), th.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert thumbnail of %s: %w", th.MXC, err)
	}
	return nil
}

const selectPreview = `
SELECT og FROM url_previews WHERE url = $1 AND fetched_ts >= $2
ORDER BY fetched_ts DESC LIMIT 1`

// Preview implements media.PreviewStore.
func (s *Media) Preview(ctx context.Context, url string, notBefore time.Time) ([]byte, bool, error) {
	var og []byte
	err := s.pool.QueryRow(ctx, selectPreview, url, notBefore.UnixMilli()).Scan(&og)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("select preview: %w", err)
	}
	return og, true, nil
}

const insertPreview = `INSERT INTO url_previews (url, fetched_ts, og) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`

// PutPreview implements media.PreviewStore.
func (s *Media) PutPreview(ctx context.Context, url string, og []byte, fetchedAt time.Time) error {
	if _, err := s.pool.Exec(ctx, insertPreview, url, fetchedAt.UnixMilli(), og); err != nil {
		return fmt.Errorf("insert preview: %w", err)
	}
	return nil
}
