package clientapi

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// mountRooms mounts room creation, events, state, membership, history,
// aliases and the directory (client-server API v1.19). Legacy r0 paths
// behave like v3. Without a rooms service nothing is mounted.
func (a *API) mountRooms(r chi.Router) {
	if a.Rooms == nil {
		return
	}
	for _, v := range []string{"/_matrix/client/v3", "/_matrix/client/r0"} {
		r.Post(v+"/createRoom", a.requireAuth(noGuests(a.createRoom)))
		r.Get(v+"/joined_rooms", a.requireAuth(a.joinedRooms))
		r.Put(v+"/rooms/{roomId}/send/{eventType}/{txnId}", a.requireAuth(a.sendEvent))
		r.Get(v+"/rooms/{roomId}/state", a.requireAuth(a.getState))
		// The empty state key comes as …/{eventType}, …/{eventType}/ or a
		// non-empty one.
		for _, p := range []string{"/state/{eventType}", "/state/{eventType}/", "/state/{eventType}/{stateKey}"} {
			r.Get(v+"/rooms/{roomId}"+p, a.requireAuth(a.getStateEvent))
			r.Put(v+"/rooms/{roomId}"+p, a.requireAuth(a.putStateEvent))
		}
		r.Get(v+"/rooms/{roomId}/event/{eventId}", a.requireAuth(a.getEvent))
		a.mountMembership(r, v)
		a.mountHistory(r, v)
		a.mountAliases(r, v)
	}
	a.mountHistoryV1(r)
}

// pathParam is a path parameter percent-decoded: chi matches on the raw
// path when the client escaped more than Go would (room ids as %21…%3A…).
func pathParam(r *http.Request, name string) string {
	raw := chi.URLParam(r, name)
	if s, err := url.PathUnescape(raw); err == nil {
		return s
	}
	return raw
}

// roomParam is the {roomId} path parameter, validated.
func roomParam(r *http.Request) (id.RoomID, error) {
	room, err := id.ParseRoomID(pathParam(r, "roomId"))
	if err != nil {
		return "", mxerr.InvalidParam.Msg("invalid room id")
	}
	return room, nil
}

// viewer is the requester as the rooms domain sees a reader.
func viewer(r *http.Request) rooms.Viewer {
	req := requesterFrom(r.Context())
	return rooms.Viewer{User: req.UserID, Device: req.DeviceID}
}
