package federation

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
)

// RoomGraph is what the event, state and history endpoints read of the
// rooms domain (*rooms.Service). Each method checks that origin is in the
// room and applies the history visibility rules for servers.
type RoomGraph interface {
	ServeEvent(ctx context.Context, origin id.ServerName, eventID id.EventID) (*event.Event, error)
	ServeState(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []*event.Event, err error)
	ServeStateIDs(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []id.EventID, err error)
	ServeEventAuth(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID) ([]*event.Event, error)
	ServeBackfill(ctx context.Context, origin id.ServerName, room id.RoomID, from []id.EventID, limit int) ([]*event.Event, error)
	ServeMissingEvents(ctx context.Context, origin id.ServerName, room id.RoomID, req rooms.MissingEventsRequest) ([]*event.Event, error)
	ServeTimestampToEvent(ctx context.Context, origin id.ServerName, room id.RoomID, ts int64, dir rooms.Direction) (*event.Event, error)
}

var _ RoomGraph = (*rooms.Service)(nil)

// pathParam is a path parameter, unescaped: chi matches the escaped path
// when the request's differs from the default encoding (an event id with
// a '/', say).
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

// roomParam parses the {roomId} path parameter and checks the origin
// against the room's server ACL.
func (a *API) roomParam(r *http.Request) (id.RoomID, error) {
	room, err := id.ParseRoomID(pathParam(r, "roomId"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("invalid room id")
	}
	if err := a.CheckServerACL(r.Context(), room, Origin(r.Context())); err != nil {
		return "", err
	}
	return room, nil
}

// graphError maps the rooms domain's not-found errors to M_NOT_FOUND.
func graphError(err error) error {
	switch {
	case errors.Is(err, rooms.ErrEventNotFound):
		return mxerr.NotFound.Msg("event not found")
	case errors.Is(err, rooms.ErrRoomNotFound):
		return mxerr.NotFound.Msg("room not found")
	}
	return err
}

// pdus returns events as the JSON array of their exact bytes.
func pdus(evs []*event.Event) []*event.Event {
	if evs == nil {
		return []*event.Event{}
	}
	return evs
}

// transaction is the answer of /event and /backfill.
type transaction struct {
	Origin         id.ServerName  `json:"origin"`
	OriginServerTS int64          `json:"origin_server_ts"`
	PDUs           []*event.Event `json:"pdus"`
}

func (a *API) transaction(evs []*event.Event) transaction {
	return transaction{Origin: a.serverName(), OriginServerTS: time.Now().UnixMilli(), PDUs: pdus(evs)}
}

// getEvent handles GET /_matrix/federation/v1/event/{eventId}.
func (a *API) getEvent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	eventID, err := id.ParseEventID(pathParam(r, "eventId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid event id"))
		return
	}
	ev, err := a.d.Serve.Graph.ServeEvent(ctx, Origin(ctx), eventID)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	if err := a.CheckServerACL(ctx, ev.RoomID(), Origin(ctx)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.transaction([]*event.Event{ev}))
}

// getEventAuth handles GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}.
func (a *API) getEventAuth(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	eventID, err := id.ParseEventID(pathParam(r, "eventId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid event id"))
		return
	}
	chain, err := a.d.Serve.Graph.ServeEventAuth(ctx, Origin(ctx), room, eventID)
	if err != nil {
		a.writeError(w, r, graphError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"auth_chain": pdus(chain)})
}

// timestampToEvent handles GET /_matrix/federation/v1/timestamp_to_event/{roomId}.
func (a *API) timestampToEvent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	room, err := a.roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("ts") || !q.Has("dir") {
		a.writeError(w, r, mxerr.MissingParam.Msg("ts and dir are required"))
		return
	}
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
	ev, err := a.d.Serve.Graph.ServeTimestampToEvent(ctx, Origin(ctx), room, ts, dir)
	if err != nil {
		if errors.Is(err, rooms.ErrEventNotFound) {
			err = mxerr.NotFound.Msg("no event found near that timestamp")
		}
		a.writeError(w, r, graphError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event_id": ev.EventID(), "origin_server_ts": ev.OriginServerTS()})
}
