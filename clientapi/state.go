package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/parleyhq/parley/id"
)

// getState handles GET /_matrix/client/v3/rooms/{roomId}/state.
func (a *API) getState(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	v := viewer(r)
	evs, err := a.Rooms.State(r.Context(), v.User, room)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Rooms.ClientEvents(evs, v))
}

// getStateEvent handles GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}:
// the content, or the whole event with ?format=event.
func (a *API) getStateEvent(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	v := viewer(r)
	se, err := a.Rooms.StateEvent(r.Context(), v.User, room, pathParam(r, "eventType"), pathParam(r, "stateKey"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "event" {
		writeJSON(w, http.StatusOK, a.Rooms.ClientEvent(se, v))
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(se.Event.Content()))
}

// putStateEvent handles PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}.
func (a *API) putStateEvent(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var content json.RawMessage
	if err := a.decodeJSON(w, r, &content); err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := a.Rooms.SetState(r.Context(), requesterFrom(r.Context()).UserID, room,
		pathParam(r, "eventType"), pathParam(r, "stateKey"), content)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]id.EventID{"event_id": eventID})
}
