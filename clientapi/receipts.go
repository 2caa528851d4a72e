package clientapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// mountReceipts mounts receipts and read markers (client-server API
// "Receipts", "Read and unread markers").
func (a *API) mountReceipts(r chi.Router, v string) {
	r.Post(v+"/rooms/{roomId}/receipt/{receiptType}/{eventId}", a.requireAuth(a.postReceipt))
	r.Post(v+"/rooms/{roomId}/read_markers", a.requireAuth(a.postReadMarkers))
}

// postReceipt handles POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}.
func (a *API) postReceipt(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	event, err := id.ParseEventID(pathParam(r, "eventId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid event id"))
		return
	}
	var body struct {
		ThreadID *string `json:"thread_id"`
	}
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	user := requesterFrom(r.Context()).UserID
	if err := a.Receipts.Post(r.Context(), user, room, pathParam(r, "receiptType"), event, body.ThreadID); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// postReadMarkers handles POST /_matrix/client/v3/rooms/{roomId}/read_markers.
func (a *API) postReadMarkers(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body struct {
		FullyRead   string `json:"m.fully_read"`
		Read        string `json:"m.read"`
		ReadPrivate string `json:"m.read.private"`
	}
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	var events [3]id.EventID
	for i, s := range []string{body.FullyRead, body.Read, body.ReadPrivate} {
		if s == "" {
			continue
		}
		if events[i], err = id.ParseEventID(s); err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msg("invalid event id "+s))
			return
		}
	}
	user := requesterFrom(r.Context()).UserID
	if err := a.Receipts.SetReadMarkers(r.Context(), user, room, events[0], events[1], events[2]); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
