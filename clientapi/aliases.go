package clientapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// mountAliases mounts room aliases, the room directory and upgrades.
func (a *API) mountAliases(r chi.Router, v string) {
	r.Put(v+"/directory/room/{roomAlias}", a.requireAuth(noGuests(a.putAlias)))
	r.Get(v+"/directory/room/{roomAlias}", a.getAlias)
	r.Delete(v+"/directory/room/{roomAlias}", a.requireAuth(noGuests(a.deleteAlias)))
	r.Get(v+"/rooms/{roomId}/aliases", a.requireAuth(a.roomAliases))
	r.Get(v+"/directory/list/room/{roomId}", a.getDirectoryVisibility)
	r.Put(v+"/directory/list/room/{roomId}", a.requireAuth(noGuests(a.putDirectoryVisibility)))
	r.Get(v+"/publicRooms", a.getPublicRooms)
	r.Post(v+"/publicRooms", a.requireAuth(a.postPublicRooms))
	r.Post(v+"/rooms/{roomId}/upgrade", a.requireAuth(noGuests(a.upgradeRoom)))
}

// putAlias handles PUT /_matrix/client/v3/directory/room/{roomAlias}.
func (a *API) putAlias(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RoomID string `json:"room_id"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	room, err := id.ParseRoomID(body.RoomID)
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("room_id is not a room id"))
		return
	}
	if err := a.Rooms.CreateAlias(r.Context(), requesterFrom(r.Context()).UserID, pathParam(r, "roomAlias"), room); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// getAlias handles GET /_matrix/client/v3/directory/room/{roomAlias}.
func (a *API) getAlias(w http.ResponseWriter, r *http.Request) {
	room, servers, err := a.Rooms.ResolveAlias(r.Context(), pathParam(r, "roomAlias"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_id": room, "servers": servers})
}

// deleteAlias handles DELETE /_matrix/client/v3/directory/room/{roomAlias}.
func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request) {
	if err := a.Rooms.DeleteAlias(r.Context(), requesterFrom(r.Context()).UserID, pathParam(r, "roomAlias")); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// roomAliases handles GET /_matrix/client/v3/rooms/{roomId}/aliases.
func (a *API) roomAliases(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	aliases, err := a.Rooms.RoomAliases(r.Context(), requesterFrom(r.Context()).UserID, room)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if aliases == nil {
		aliases = []id.RoomAlias{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"aliases": aliases})
}

// upgradeRoom handles POST /_matrix/client/v3/rooms/{roomId}/upgrade.
func (a *API) upgradeRoom(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		NewVersion         string   `json:"new_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.NewVersion == "" {
		a.writeError(w, r, mxerr.MissingParam.Msg("new_version is required"))
		return
	}
	for _, c := range body.AdditionalCreators {
		if _, err := id.ParseUserID(c); err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msgf("additional_creators: %q is not a user id", c))
			return
		}
	}
	newRoom, err := a.Rooms.Upgrade(r.Context(), requesterFrom(r.Context()).UserID, room, body.NewVersion, body.AdditionalCreators)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]id.RoomID{"replacement_room": newRoom})
}
