package clientapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/mxerr"
)

// mountMedia mounts the content repository (spec: Client-Server API,
// "Content repository"). Uploads stay under /_matrix/media; downloads,
// thumbnails, previews and the config moved to the authenticated
// /_matrix/client/v1/media in v1.11. The old unauthenticated download and
// thumbnail paths answer only with media.legacy_unauthenticated on.
func (a *API) mountMedia(r chi.Router) {
	if a.Media == nil {
		return
	}
	for _, v := range []string{"/_matrix/media/v3", "/_matrix/media/r0"} {
		r.Post(v+"/upload", mediaHeaders(a.requireAuth(a.uploadMedia)))
		r.Put(v+"/upload/{serverName}/{mediaId}", mediaHeaders(a.requireAuth(a.uploadMediaTo)))
		r.Get(v+"/config", mediaHeaders(a.requireAuth(a.mediaConfig)))
		r.Get(v+"/preview_url", mediaHeaders(a.requireAuth(a.previewURL)))
		r.Get(v+"/download/{serverName}/{mediaId}", mediaHeaders(a.legacyMedia(a.download)))
		r.Get(v+"/download/{serverName}/{mediaId}/{fileName}", mediaHeaders(a.legacyMedia(a.download)))
		r.Get(v+"/thumbnail/{serverName}/{mediaId}", mediaHeaders(a.legacyMedia(a.thumbnail)))
	}
	r.Post("/_matrix/media/v1/create", mediaHeaders(a.requireAuth(a.createMedia)))
	const v1 = "/_matrix/client/v1/media"
	r.Get(v1+"/config", mediaHeaders(a.requireAuth(a.mediaConfig)))
	r.Get(v1+"/download/{serverName}/{mediaId}", mediaHeaders(a.requireAuth(a.download)))
	r.Get(v1+"/download/{serverName}/{mediaId}/{fileName}", mediaHeaders(a.requireAuth(a.download)))
	r.Get(v1+"/thumbnail/{serverName}/{mediaId}", mediaHeaders(a.requireAuth(a.thumbnail)))
	r.Get(v1+"/preview_url", mediaHeaders(a.requireAuth(a.previewURL)))
}

// contentSecurityPolicy is the policy the spec recommends for served
// content: nothing in it may run or load anything, even when a browser
// opens it directly.
const contentSecurityPolicy = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';"

// mediaHeaders sets the safe headers on every media response, errors
// included: the CSP above, no MIME sniffing (an uploaded HTML file declared
// as image/png stays a broken image), and Cross-Origin-Resource-Policy for
// web clients (spec v1.4).
func mediaHeaders(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		next(w, r)
	}
}

// legacyMedia guards the deprecated unauthenticated endpoints: with
// media.legacy_unauthenticated off they answer 404 M_NOT_FOUND, the answer
// the spec gives for media frozen out of them (v1.11, "Client behaviour").
func (a *API) legacyMedia(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.Config.Media.LegacyUnauthenticated {
			writeMatrixError(w, mxerr.NotFound.Msg("Unauthenticated media access is disabled; use /_matrix/client/v1/media"))
			return
		}
		// Other servers' media is fetched over federation only for the
		// authenticated endpoints: the deprecated ones are frozen to what
		// existed before v1.11 (and a server falling back to them asks
		// with allow_remote=false anyway).
		if chi.URLParam(r, "serverName") != string(a.Config.ServerName) {
			writeMatrixError(w, mxerr.NotFound.Msg("Remote media is only served on /_matrix/client/v1/media"))
			return
		}
		next(w, r)
	}
}
