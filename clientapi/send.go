package clientapi

import (
	"encoding/json"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// sendEvent handles PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}.
func (a *API) sendEvent(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eventType := pathParam(r, "eventType")
	if requesterFrom(r.Context()).IsGuest && eventType != "m.room.message" {
		// Guest access lets guests send m.room.message only.
		a.writeError(w, r, mxerr.GuestAccessForbidden.Msg("guests may only send m.room.message"))
		return
	}
	txnID := pathParam(r, "txnId")
	if txnID == "" || len(txnID) > 255 {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid transaction id"))
		return
	}
	var content json.RawMessage
	if err := a.decodeJSON(w, r, &content); err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := a.Rooms.Send(r.Context(), viewer(r), room, eventType, txnID, content)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]id.EventID{"event_id": eventID})
}

// getEvent handles GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := id.ParseEventID(pathParam(r, "eventId"))
	if err != nil {
		a.writeError(w, r, mxerr.NotFound.Msg("event not found"))
		return
	}
	v := viewer(r)
	se, err := a.Rooms.Event(r.Context(), v.User, room, eventID)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.Rooms.ClientEvent(se, v))
}
