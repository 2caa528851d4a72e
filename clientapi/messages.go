package clientapi

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// mountHistory mounts /messages, /context and redaction.
func (a *API) mountHistory(r chi.Router, v string) {
	r.Get(v+"/rooms/{roomId}/messages", a.requireAuth(a.messages))
	r.Get(v+"/rooms/{roomId}/context/{eventId}", a.requireAuth(a.eventContext))
	r.Put(v+"/rooms/{roomId}/redact/{eventId}/{txnId}", a.requireAuth(a.redact))
}

// mountHistoryV1 mounts the v1-only history endpoints.
func (a *API) mountHistoryV1(r chi.Router) {
	r.Get("/_matrix/client/v1/rooms/{roomId}/timestamp_to_event", a.requireAuth(a.timestampToEvent))
}

// queryLimit reads the limit query parameter (0 when absent).
func queryLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, mxerr.InvalidParam.Msg("limit must be a non-negative integer")
	}
	return n, nil
}

// messages handles GET /_matrix/client/v3/rooms/{roomId}/messages.
func (a *API) messages(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	req := rooms.MessagesRequest{From: q.Get("from"), To: q.Get("to")}
	if req.Dir, err = rooms.ParseDirection(q.Get("dir")); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Limit, err = queryLimit(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Filter, err = rooms.ParseEventFilter(q.Get("filter")); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Filter.Limit != nil && req.Limit == 0 {
		req.Limit = *req.Filter.Limit
	}
	v := viewer(r)
	page, err := a.Rooms.Messages(r.Context(), v.User, room, req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	chunk, err := a.withoutIgnored(r.Context(), v, page.Chunk)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	body := map[string]any{"start": page.Start, "chunk": a.Rooms.ClientEvents(chunk, v)}
	if page.End != "" {
		body["end"] = page.End
	}
	if len(page.State) > 0 {
		body["state"] = a.Rooms.ClientEvents(page.State, v)
	}
	writeJSON(w, http.StatusOK, body)
}

// eventContext handles GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}.
func (a *API) eventContext(w http.ResponseWriter, r *http.Request) {
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
	limit, err := queryLimit(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	f, err := rooms.ParseEventFilter(r.URL.Query().Get("filter"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	v := viewer(r)
	c, err := a.Rooms.Context(r.Context(), v.User, room, eventID, limit, f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"event":         a.Rooms.ClientEvent(c.Event, v),
		"events_before": a.Rooms.ClientEvents(c.Before, v),
		"events_after":  a.Rooms.ClientEvents(c.After, v),
		"start":         c.Start,
		"end":           c.End,
		"state":         a.Rooms.ClientEvents(c.State, v),
	})
}

// redact handles PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}.
func (a *API) redact(w http.ResponseWriter, r *http.Request) {
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
	var body reasonBody
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	redaction, err := a.Rooms.Redact(r.Context(), viewer(r), room, eventID, pathParam(r, "txnId"), body.Reason)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]id.EventID{"event_id": redaction})
}

// timestampToEvent handles GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event.
func (a *API) timestampToEvent(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	ts, err := strconv.ParseInt(q.Get("ts"), 10, 64)
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("ts must be an integer"))
		return
	}
	dir, err := rooms.ParseDirection(q.Get("dir"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	se, err := a.Rooms.TimestampToEvent(r.Context(), requesterFrom(r.Context()).UserID, room, ts, dir)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_id": se.Event.EventID(), "origin_server_ts": se.Event.OriginServerTS()})
}
