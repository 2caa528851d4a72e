package federation

import (
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// eventIDQuery reads the required event_id query parameter of /state and
// /state_ids.
func eventIDQuery(r *http.Request) (id.EventID, error) {
	q := r.URL.Query()
	if !q.Has("event_id") {
		return "", mxerr.MissingParam.Msg("event_id is required")
	}
	e, err := id.ParseEventID(q.Get("event_id"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("invalid event_id")
	}
	return e, nil
}

// getState handles GET /_matrix/federation/v1/state/{roomId}?event_id=:
// the state before the event and its auth chain.
func (a *API) getState(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := eventIDQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	state, chain, err := a.d.Serve.Graph.ServeState(ctx, Origin(ctx), room, eventID)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pdus": pdus(state), "auth_chain": pdus(chain)})
}

// getStateIDs handles GET /_matrix/federation/v1/state_ids/{roomId}?event_id=.
func (a *API) getStateIDs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := eventIDQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	state, chain, err := a.d.Serve.Graph.ServeStateIDs(ctx, Origin(ctx), room, eventID)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	if state == nil {
		state = []id.EventID{}
	}
	if chain == nil {
		chain = []id.EventID{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pdu_ids": state, "auth_chain_ids": chain})
}
