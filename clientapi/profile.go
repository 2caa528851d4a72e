package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// mountProfiles mounts the profile endpoints (client-server API v1.19,
// "Profiles"; custom fields since v1.16) and the user directory. Reading a
// profile needs no access token (profile.yaml lists no security for the
// GETs). Without a profiles service nothing is mounted.
func (a *API) mountProfiles(r chi.Router) {
	if a.Profiles == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Get(v+"/profile/{userId}", a.getProfile)
		r.Get(v+"/profile/{userId}/{keyName}", a.getProfileField)
		r.Put(v+"/profile/{userId}/{keyName}", a.requireAuth(a.putProfileField))
		r.Delete(v+"/profile/{userId}/{keyName}", a.requireAuth(a.deleteProfileField))
		r.Post(v+"/user_directory/search", a.requireAuth(a.searchUserDirectory))
	}
}

// userParam is the {userId} path parameter, validated.
func userParam(r *http.Request) (id.UserID, error) {
	u, err := id.ParseUserID(pathParam(r, "userId"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("invalid user id")
	}
	return u, nil
}

// getProfile handles GET /_matrix/client/v3/profile/{userId}.
func (a *API) getProfile(w http.ResponseWriter, r *http.Request) {
	user, err := userParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := a.Profiles.Profile(r.Context(), user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// getProfileField handles GET /_matrix/client/v3/profile/{userId}/{keyName}.
func (a *API) getProfileField(w http.ResponseWriter, r *http.Request) {
	user, err := userParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	key := pathParam(r, "keyName")
	v, err := a.Profiles.Field(r.Context(), user, key)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{key: v})
}

// putProfileField handles PUT /_matrix/client/v3/profile/{userId}/{keyName}:
// the body holds the value under the key named in the path.
func (a *API) putProfileField(w http.ResponseWriter, r *http.Request) {
	user, err := userParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	key := pathParam(r, "keyName")
	var body map[string]json.RawMessage
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	v, ok := body[key]
	if !ok {
		a.writeError(w, r, mxerr.MissingParam.Msgf("the body must hold %q", key))
		return
	}
	if err := a.Profiles.SetField(r.Context(), requesterFrom(r.Context()).UserID, user, key, v); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// deleteProfileField handles DELETE /_matrix/client/v3/profile/{userId}/{keyName}.
func (a *API) deleteProfileField(w http.ResponseWriter, r *http.Request) {
	user, err := userParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Profiles.DeleteField(r.Context(), requesterFrom(r.Context()).UserID, user, pathParam(r, "keyName")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}
