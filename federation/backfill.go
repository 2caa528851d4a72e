package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// maxBackfillFrom bounds the v parameters of one /backfill request and the
// event ids of one /get_missing_events body.
const maxBackfillFrom = 100

// backfill handles GET /_matrix/federation/v1/backfill/{roomId}?v=…&limit=.
func (a *API) backfill(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	if len(q["v"]) == 0 || !q.Has("limit") {
		a.writeError(w, r, mxerr.MissingParam.Msg("v and limit are required"))
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 0 {
		a.writeError(w, r, mxerr.InvalidParam.Msg("limit must be a non-negative integer"))
		return
	}
	from, err := parseEventIDs(q["v"])
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if limit == 0 {
		writeJSON(w, http.StatusOK, a.transaction(nil))
		return
	}
	evs, err := a.d.Serve.Graph.ServeBackfill(ctx, Origin(ctx), room, from, limit)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	writeJSON(w, http.StatusOK, a.transaction(evs))
}

// parseEventIDs parses the event ids of a request, at most maxBackfillFrom.
func parseEventIDs(raw []string) ([]id.EventID, error) {
	if len(raw) > maxBackfillFrom {
		return nil, mxerr.InvalidParam.Msgf("at most %d event ids", maxBackfillFrom)
	}
	out := make([]id.EventID, 0, len(raw))
	for _, s := range raw {
		e, err := id.ParseEventID(s)
		if err != nil {
			return nil, mxerr.InvalidParam.Msgf("invalid event id %q", s)
		}
		out = append(out, e)
	}
	return out, nil
}

// missingEventsBody is POST /get_missing_events' body.
type missingEventsBody struct {
	Limit          *int     `json:"limit"`
	MinDepth       *int64   `json:"min_depth"`
	EarliestEvents []string `json:"earliest_events"`
	LatestEvents   []string `json:"latest_events"`
}

// getMissingEvents handles POST /_matrix/federation/v1/get_missing_events/{roomId}.
func (a *API) getMissingEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body missingEventsBody
	if err := a.decodeJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if body.EarliestEvents == nil || body.LatestEvents == nil {
		a.writeError(w, r, mxerr.BadJSON.Msg("earliest_events and latest_events are required"))
		return
	}
	req := rooms.MissingEventsRequest{}
	if body.Limit != nil {
		if *body.Limit < 0 {
			a.writeError(w, r, mxerr.InvalidParam.Msg("limit must not be negative"))
			return
		}
		req.Limit = max(*body.Limit, 1)
	}
	if body.MinDepth != nil {
		req.MinDepth = *body.MinDepth
	}
	if req.Earliest, err = parseEventIDs(body.EarliestEvents); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.Latest, err = parseEventIDs(body.LatestEvents); err != nil {
		a.writeError(w, r, err)
		return
	}
	evs, err := a.d.Serve.Graph.ServeMissingEvents(ctx, Origin(ctx), room, req)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": pdus(evs)})
}

// RemoteReads also fetches the state before backfilled events (rooms,
// backfill_state.go: /state_ids, /event, /state), as the inbound pipeline's
// Fetcher does.
var _ rooms.RemoteFetcher = RemoteReads{}

// GetMissingEvents implements rooms.RemoteFetcher.
func (r RemoteReads) GetMissingEvents(ctx context.Context, dest id.ServerName, room id.RoomID, earliest, latest []id.EventID, limit int, minDepth int64) ([]json.RawMessage, error) {
	return Fetcher{Client: r.Client}.GetMissingEvents(ctx, dest, room, earliest, latest, limit, minDepth)
}

// GetEvent implements rooms.RemoteFetcher.
func (r RemoteReads) GetEvent(ctx context.Context, dest id.ServerName, eventID id.EventID) (json.RawMessage, error) {
	return Fetcher{Client: r.Client}.GetEvent(ctx, dest, eventID)
}

// GetStateIDs implements rooms.RemoteFetcher.
func (r RemoteReads) GetStateIDs(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []id.EventID, err error) {
	return Fetcher{Client: r.Client}.GetStateIDs(ctx, dest, room, eventID)
}

// GetState implements rooms.RemoteFetcher.
func (r RemoteReads) GetState(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []json.RawMessage, err error) {
	return Fetcher{Client: r.Client}.GetState(ctx, dest, room, eventID)
}

// EventAuth implements rooms.RemoteFetcher.
func (r RemoteReads) EventAuth(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) ([]json.RawMessage, error) {
	return Fetcher{Client: r.Client}.EventAuth(ctx, dest, room, eventID)
}
