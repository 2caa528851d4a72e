package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
)

// mountAccountData mounts account data and room tags (client-server API
// "Client Config", "Room Tagging"). All of it is the requester's own.
func (a *API) mountAccountData(r chi.Router, v string) {
	r.Get(v+"/user/{userId}/account_data/{type}", a.requireAuth(a.getAccountData))
	r.Put(v+"/user/{userId}/account_data/{type}", a.requireAuth(a.putAccountData))
	r.Get(v+"/user/{userId}/rooms/{roomId}/account_data/{type}", a.requireAuth(a.getAccountData))
	r.Put(v+"/user/{userId}/rooms/{roomId}/account_data/{type}", a.requireAuth(a.putAccountData))
	r.Get(v+"/user/{userId}/rooms/{roomId}/tags", a.requireAuth(a.getTags))
	r.Put(v+"/user/{userId}/rooms/{roomId}/tags/{tag}", a.requireAuth(a.putTag))
	r.Delete(v+"/user/{userId}/rooms/{roomId}/tags/{tag}", a.requireAuth(a.deleteTag))
}

// accountDataTarget reads the owner (the requester) and, on the per-room
// paths, the room.
func accountDataTarget(r *http.Request) (id.UserID, id.RoomID, error) {
	user, err := ownUserParam(r)
	if err != nil {
		return "", "", err
	}
	if chi.URLParam(r, "roomId") == "" {
		return user, "", nil
	}
	room, err := roomParam(r)
	return user, room, err
}

// getAccountData handles GET /_matrix/client/v3/user/{userId}/account_data/{type}
// and GET …/user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) getAccountData(w http.ResponseWriter, r *http.Request) {
	user, room, err := accountDataTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	content, err := a.AccountData.Get(r.Context(), user, room, pathParam(r, "type"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, content)
}

// putAccountData handles PUT /_matrix/client/v3/user/{userId}/account_data/{type}
// and PUT …/user/{userId}/rooms/{roomId}/account_data/{type}.
func (a *API) putAccountData(w http.ResponseWriter, r *http.Request) {
	user, room, err := accountDataTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var content json.RawMessage
	if err := a.decodeJSON(w, r, &content); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.AccountData.Put(r.Context(), user, room, pathParam(r, "type"), content); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// getTags handles GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags.
func (a *API) getTags(w http.ResponseWriter, r *http.Request) {
	user, room, err := accountDataTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	tags, err := a.AccountData.Tags(r.Context(), user, room)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

// putTag handles PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) putTag(w http.ResponseWriter, r *http.Request) {
	user, room, err := accountDataTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var content json.RawMessage
	if err := a.decodeJSON(w, r, &content); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.AccountData.PutTag(r.Context(), user, room, pathParam(r, "tag"), content); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// deleteTag handles DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}.
func (a *API) deleteTag(w http.ResponseWriter, r *http.Request) {
	user, room, err := accountDataTarget(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.AccountData.DeleteTag(r.Context(), user, room, pathParam(r, "tag")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
