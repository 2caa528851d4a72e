package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley/mxerr"
)

// RemoteFetcher downloads content from the server its mxc URI names
// (server-server API, "Content Repository": GET
// /_matrix/federation/v1/media/download/{mediaId}, following the
// redirect a server may answer with). Package federation implements it.
type RemoteFetcher interface {
	// FetchMedia returns the content of mxc from mxc.Server; ErrNotFound
	// when that server has none. The caller closes Body and reads at most
	// maxSize bytes of it.
	FetchMedia(ctx context.Context, mxc MXC, maxSize int64) (*RemoteContent, error)
}

// RemoteContent is content another server sent.
type RemoteContent struct {
	ContentType string
	Filename    string // from Content-Disposition; "" when none
	Body        io.ReadCloser
}

// errRemoteUnavailable: the media's server did not answer usefully (the
// spec's 502 for a remote server that cannot be reached).
var errRemoteUnavailable = mxerr.Unknown.WithStatus(http.StatusBadGateway).Msg("The media's server could not be reached")

// remoteCache is the state of fetching remote media: one fetch per mxc at
// a time, the others wait for it.
type remoteCache struct {
	fetcher  RemoteFetcher
	mu       sync.Mutex
	inFlight map[MXC]*remoteFetch
}

type remoteFetch struct {
	done chan struct{}
	m    Media
	err  error
}

// SetRemote lets downloads and thumbnails of other servers' media fetch
// them over federation and keep them in the media store (the spec's
// "cache" of remote media). App calls it once, before serving; until then
// remote media is not found.
func (s *Service) SetRemote(f RemoteFetcher) {
	s.remote = &remoteCache{fetcher: f, inFlight: map[MXC]*remoteFetch{}}
}

// remoteMedia returns the metadata of another server's media, fetching
// and storing it the first time. The whole original is fetched, also for
// a thumbnail: thumbnails are then made here like those of local media.
func (s *Service) remoteMedia(ctx context.Context, mxc MXC) (Media, error) {
	if s.remote == nil {
		return Media{}, ErrNotFound
	}
	m, err := s.stores.Metadata.Get(ctx, mxc)
	if err == nil && !m.Pending() {
		return m, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Media{}, err
	}
	rc := s.remote
	rc.mu.Lock()
	f := rc.inFlight[mxc]
	if f == nil {
		f = &remoteFetch{done: make(chan struct{})}
		rc.inFlight[mxc] = f
		rc.mu.Unlock()
		f.m, f.err = s.fetchRemote(ctx, mxc)
		rc.mu.Lock()
		delete(rc.inFlight, mxc)
		rc.mu.Unlock()
		close(f.done)
		return f.m, f.err
	}
	rc.mu.Unlock()
	select {
	case <-f.done:
		return f.m, f.err
	case <-ctx.Done():
		return Media{}, ctx.Err()
	}
}

// fetchRemote fetches mxc, streams it into the blob store under the
// upload size limit and records it (uploader none: the server made the
// copy, it counts against no quota).
func (s *Service) fetchRemote(ctx context.Context, mxc MXC) (Media, error) {
	// A fetch that ended between the caller's look-up and its taking the
	// in-flight slot has stored it already.
	if m, err := s.stores.Metadata.Get(ctx, mxc); err == nil && !m.Pending() {
		return m, nil
	}
	rc, err := s.remote.fetcher.FetchMedia(ctx, mxc, s.cfg.MaxUploadSize)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTooLarge) {
			return Media{}, err
		}
		s.logger.WarnContext(ctx, "remote media fetch failed", slog.String("mxc", mxc.String()), slog.String("error", err.Error()))
		if _, ok := mxerr.As(err); ok {
			return Media{}, err
		}
		return Media{}, errors.Join(errRemoteUnavailable, err)
	}
	defer rc.Body.Close()
	contentType := rc.ContentType
	if _, err := normalizeContentType(contentType); err != nil {
		contentType = ""
	}
	filename := rc.Filename
	if !validFilename(filename) {
		filename = ""
	}
	m, err := s.receive(ctx, Upload{ContentType: contentType, Filename: filename, Length: -1, Body: rc.Body})
	if err != nil {
		return Media{}, err
	}
	m.MXC = mxc
	m.CreatedAt = m.UploadedAt
	if err := s.stores.Metadata.Record(ctx, m, 0); err != nil {
		if errors.Is(err, ErrExists) {
			// Another node of the cluster fetched it first.
			return s.stores.Metadata.Get(ctx, mxc)
		}
		return Media{}, err
	}
	return m, nil
}

// DownloadForServer returns local content for another server (server-server
// API GET /_matrix/federation/v1/media/download): always the bytes, never a
// presigned redirect — a blob store's URL serves the content without its
// type (blobs are stored by content address), and the other server would
// keep the content as application/octet-stream.
func (s *Service) DownloadForServer(ctx context.Context, mxc MXC, wait time.Duration) (Content, error) {
	if !s.local(mxc) {
		return Content{}, ErrNotFound
	}
	m, err := s.uploaded(ctx, mxc, wait)
	if err != nil {
		return Content{}, err
	}
	b, err := s.openBlob(ctx, m.Blob)
	if err != nil {
		return Content{}, err
	}
	return Content{Media: m, Body: b}, nil
}
