package clientapi

import (
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// createRoom handles POST /_matrix/client/v3/createRoom.
func (a *API) createRoom(w http.ResponseWriter, r *http.Request) {
	var req rooms.CreateRequest
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	room, err := a.Rooms.CreateRoom(r.Context(), requesterFrom(r.Context()).UserID, req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room_id": room})
}

// joinedRooms handles GET /_matrix/client/v3/joined_rooms.
func (a *API) joinedRooms(w http.ResponseWriter, r *http.Request) {
	list, err := a.Rooms.JoinedRooms(r.Context(), requesterFrom(r.Context()).UserID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []id.RoomID{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"joined_rooms": list})
}
