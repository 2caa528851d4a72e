package federation

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// Version is what GET /_matrix/federation/v1/version announces.
const Version = "0.1.0"

// keyRoutes mounts the key server and notary (server-server API,
// "Retrieving server keys"); none needs authentication.
func (a *API) keyRoutes(r chi.Router) {
	r.Get("/_matrix/key/v2/server", a.serverKeys)
	// The deprecated form with a key id answers the same document.
	r.Get("/_matrix/key/v2/server/{keyId}", a.serverKeys)
	r.Post("/_matrix/key/v2/query", a.queryKeys)
	r.Get("/_matrix/key/v2/query/{serverName}", a.queryServerKeys)
}

// version handles GET /_matrix/federation/v1/version.
func (a *API) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"server": map[string]string{"name": "Parley", "version": Version}})
}

// serverKeys handles GET /_matrix/key/v2/server.
func (a *API) serverKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(a.d.Keyring.KeyDocument())
}

// queryKeys handles POST /_matrix/key/v2/query: the notary's batch query.
func (a *API) queryKeys(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ServerKeys map[string]map[string]struct {
			MinimumValidUntilTS int64 `json:"minimum_valid_until_ts"`
		} `json:"server_keys"`
	}
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.ServerKeys == nil {
		a.writeError(w, r, mxerr.MissingParam.Msg("server_keys is required"))
		return
	}
	criteria := make(map[id.ServerName]map[string]int64, len(req.ServerKeys))
	for server, keys := range req.ServerKeys {
		name, err := id.ParseServerName(server)
		if err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msgf("%q is not a server name", server))
			return
		}
		ids := make(map[string]int64, len(keys))
		for keyID, c := range keys {
			ids[keyID] = c.MinimumValidUntilTS
		}
		criteria[name] = ids
	}
	a.answerKeyQuery(w, r, criteria)
}

// queryServerKeys handles GET /_matrix/key/v2/query/{serverName}.
func (a *API) queryServerKeys(w http.ResponseWriter, r *http.Request) {
	name, err := id.ParseServerName(chi.URLParam(r, "serverName"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("not a server name"))
		return
	}
	var minValid int64
	if raw := r.URL.Query().Get("minimum_valid_until_ts"); raw != "" {
		if minValid, err = strconv.ParseInt(raw, 10, 64); err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msg("minimum_valid_until_ts must be an integer"))
			return
		}
	}
	// No key id: every key of the server, valid until the minimum.
	criteria := map[id.ServerName]map[string]int64{name: {}}
	if minValid != 0 {
		criteria[name] = map[string]int64{"": minValid}
	}
	a.answerKeyQuery(w, r, criteria)
}

func (a *API) answerKeyQuery(w http.ResponseWriter, r *http.Request, criteria map[id.ServerName]map[string]int64) {
	responses, err := a.d.Keyring.Query(r.Context(), criteria)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server_keys": responses})
}
