package federation

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"time"

	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/mxerr"
)

// MediaReader is what the federation media endpoints read (*media.Service).
type MediaReader interface {
	// DownloadForServer is the content itself, never a redirect to the
	// blob store (whose URL would lose the content type).
	DownloadForServer(ctx context.Context, mxc media.MXC, wait time.Duration) (media.Content, error)
	Thumbnail(ctx context.Context, mxc media.MXC, req media.ThumbnailRequest, wait time.Duration) (media.Content, error)
}

var _ MediaReader = (*media.Service)(nil)

// mediaErrors maps the content repository's errors to Matrix errors.
var mediaErrors = []struct {
	err    error
	matrix *mxerr.Error
}{
	{media.ErrNotFound, mxerr.NotFound.Msg("Unknown media")},
	{media.ErrNotYetUploaded, mxerr.NotYetUploaded.Msg("Content has not yet been uploaded")},
	{media.ErrCannotThumbnail, mxerr.Unknown.WithStatus(http.StatusBadRequest).Msg("Cannot generate thumbnails for the requested content")},
	{media.ErrImageTooLarge, mxerr.TooLarge.Msg("Content is too large to thumbnail")},
	{media.ErrBadThumbnailParam, mxerr.InvalidParam.Msg("Invalid thumbnail size or method")},
	{media.ErrStoreUnavailable, mxerr.Unknown.WithStatus(http.StatusServiceUnavailable).Msg("The media store is unavailable")},
}

func mediaError(err error) error {
	for _, m := range mediaErrors {
		if errors.Is(err, m.err) {
			return m.matrix
		}
	}
	return err
}

// localMXC is the mxc of one of this server's media from the {mediaId}
// path parameter; only local media is served to other servers.
func (a *API) localMXC(r *http.Request) (media.MXC, error) {
	mid, err := media.ParseID(pathParam(r, "mediaId"))
	if err != nil {
		return media.MXC{}, mxerr.NotFound.Msg("Unknown media")
	}
	return media.MXC{Server: a.serverName(), MediaID: mid}, nil
}

// mediaDownload handles GET /_matrix/federation/v1/media/download/{mediaId}.
func (a *API) mediaDownload(w http.ResponseWriter, r *http.Request) {
	mxc, err := a.localMXC(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	wait, err := media.ParseWait(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.d.Serve.Media.DownloadForServer(r.Context(), mxc, wait)
	if err != nil {
		a.writeError(w, r, mediaError(err))
		return
	}
	a.writeMultipartMedia(w, r, c)
}

// mediaThumbnail handles GET /_matrix/federation/v1/media/thumbnail/{mediaId}.
func (a *API) mediaThumbnail(w http.ResponseWriter, r *http.Request) {
	mxc, err := a.localMXC(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	wait, err := media.ParseWait(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	req, err := media.ParseThumbnailQuery(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.d.Serve.Media.Thumbnail(r.Context(), mxc, req, wait)
	if err != nil {
		a.writeError(w, r, mediaError(err))
		return
	}
	a.writeMultipartMedia(w, r, c)
}

// writeMultipartMedia answers with the spec's multipart/mixed body: a JSON
// metadata object (empty, v1.11), then the content with its type and
// disposition, or a Location part pointing at a presigned URL.
func (a *API) writeMultipartMedia(w http.ResponseWriter, r *http.Request, c media.Content) {
	if c.Body != nil {
		defer c.Body.Close()
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.WriteHeader(http.StatusOK)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json"}})
	if err != nil {
		return
	}
	if _, err := meta.Write([]byte(`{}`)); err != nil {
		return
	}
	header := textproto.MIMEHeader{}
	if c.RedirectURL != "" {
		header.Set("Location", c.RedirectURL)
	} else {
		header.Set("Content-Type", c.ContentType)
		header.Set("Content-Disposition", mediaDisposition(c.Filename))
	}
	part, err := mw.CreatePart(header)
	if err != nil {
		return
	}
	if c.Body != nil {
		if _, err := io.Copy(part, c.Body); err != nil {
			// The status is sent; the other server sees a cut body.
			a.logger().WarnContext(r.Context(), "media download to a server cut short", "error", err.Error())
			return
		}
	}
	_ = mw.Close()
}

// mediaDisposition is the Content-Disposition of served content: the
// other server decides how to serve it to its clients, so it only needs
// the file name.
func mediaDisposition(filename string) string {
	if filename == "" {
		return "attachment"
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": filename}); v != "" {
		return v
	}
	return "attachment"
}
