package clientapi

import (
	"mime"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/mxerr"
)

// uploadMedia handles POST /_matrix/media/v3/upload.
func (a *API) uploadMedia(w http.ResponseWriter, r *http.Request) {
	mxc, err := a.Media.Upload(r.Context(), a.mediaUpload(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"content_uri": mxc.String()})
}

// createMedia handles POST /_matrix/media/v1/create.
func (a *API) createMedia(w http.ResponseWriter, r *http.Request) {
	mxc, expires, err := a.Media.Create(r.Context(), requesterFrom(r.Context()).UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"content_uri":       mxc.String(),
		"unused_expires_at": expires.UnixMilli(),
	})
}

// uploadMediaTo handles PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
func (a *API) uploadMediaTo(w http.ResponseWriter, r *http.Request) {
	mxc, ok := a.mxcParam(w, r)
	if !ok {
		return
	}
	if err := a.Media.UploadTo(r.Context(), mxc, a.mediaUpload(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

func (a *API) mediaUpload(r *http.Request) media.Upload {
	return media.Upload{
		Uploader:    requesterFrom(r.Context()).UserID,
		ContentType: r.Header.Get("Content-Type"),
		Filename:    r.URL.Query().Get("filename"),
		Length:      r.ContentLength,
		Body:        r.Body,
	}
}

// mediaConfig handles GET /_matrix/client/v1/media/config.
func (a *API) mediaConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int64{"m.upload.size": a.Media.MaxUploadSize()})
}

// download handles GET /_matrix/client/v1/media/download/{serverName}/{mediaId}[/{fileName}].
func (a *API) download(w http.ResponseWriter, r *http.Request) {
	mxc, ok := a.mxcParam(w, r)
	if !ok {
		return
	}
	wait, err := media.ParseWait(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.Media.Download(r.Context(), mxc, wait)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	filename := c.Filename
	if override := chi.URLParam(r, "fileName"); override != "" {
		filename = override
	}
	serveContent(w, r, c, contentDisposition(c.ContentType, filename))
}

// thumbnail handles GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}.
func (a *API) thumbnail(w http.ResponseWriter, r *http.Request) {
	mxc, ok := a.mxcParam(w, r)
	if !ok {
		return
	}
	req, err := media.ParseThumbnailQuery(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	wait, err := media.ParseWait(r.URL.Query())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	c, err := a.Media.Thumbnail(r.Context(), mxc, req, wait)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	// Always inline (spec v1.12); thumbnails are images of the inline list.
	disposition := contentDisposition(c.ContentType, c.Filename)
	serveContent(w, r, c, disposition)
}

// previewURL handles GET /_matrix/client/v1/media/preview_url.
func (a *API) previewURL(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if target == "" {
		a.writeError(w, r, mxerr.MissingParam.Msg("url is required"))
		return
	}
	og, err := a.Media.PreviewURL(r.Context(), target)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, og)
}

// serveContent writes media with Range and conditional request support.
func serveContent(w http.ResponseWriter, r *http.Request, c media.Content, disposition string) {
	if c.RedirectURL != "" {
		http.Redirect(w, r, c.RedirectURL, http.StatusTemporaryRedirect)
		return
	}
	defer c.Body.Close()
	h := w.Header()
	h.Set("Content-Type", c.ContentType)
	h.Set("Content-Disposition", disposition)
	// Media never changes: its content address is a perfect ETag.
	h.Set("ETag", `"`+string(c.Blob)+`"`)
	// Authenticated: caches shared between users must not keep it.
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	http.ServeContent(w, r, "", c.UploadedAt, c.Body)
}

// inlineTypes are the content types the spec allows with
// Content-Disposition: inline ("Serving inline content"); everything else
// is served as an attachment.
var inlineTypes = map[string]bool{
	"text/css": true, "text/plain": true, "text/csv": true,
	"application/json": true, "application/ld+json": true,
	"image/jpeg": true, "image/gif": true, "image/png": true, "image/apng": true,
	"image/webp": true, "image/avif": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true,
	"audio/mp4": true, "audio/webm": true, "audio/aac": true, "audio/mpeg": true,
	"audio/ogg": true, "audio/wave": true, "audio/wav": true, "audio/x-wav": true,
	"audio/x-pn-wav": true, "audio/flac": true, "audio/x-flac": true,
}

// contentDisposition is inline for the spec's safe types and attachment
// otherwise, with the file name when there is one (RFC 6266; non-ASCII
// names as RFC 2231 filename*).
func contentDisposition(contentType, filename string) string {
	disposition := "attachment"
	if t, _, err := mime.ParseMediaType(contentType); err == nil && inlineTypes[t] {
		disposition = "inline"
	}
	if filename == "" {
		return disposition
	}
	if v := mime.FormatMediaType(disposition, map[string]string{"filename": filename}); v != "" {
		return v
	}
	return disposition
}

func (a *API) mxcParam(w http.ResponseWriter, r *http.Request) (media.MXC, bool) {
	mxc, err := media.ParseMXCParts(chi.URLParam(r, "serverName"), chi.URLParam(r, "mediaId"))
	if err != nil {
		// An id that cannot exist: unknown media (and no path traversal).
		writeMatrixError(w, mxerr.NotFound.Msg("Unknown media"))
		return media.MXC{}, false
	}
	return mxc, true
}
