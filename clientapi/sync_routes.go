package clientapi

import "github.com/go-chi/chi/v5"

// mountSync mounts the filter endpoints and /sync. Without a sync service
// (tests of the router base) nothing is mounted.
func (a *API) mountSync(r chi.Router) {
	if a.Sync == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Post(v+"/user/{userId}/filter", a.requireAuth(a.uploadFilter))
		r.Get(v+"/user/{userId}/filter/{filterId}", a.requireAuth(a.getFilter))
		r.Get(v+"/sync", a.requireAuth(a.sync))
	}
}
