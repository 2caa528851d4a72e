package clientapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// mountMembership mounts joining, inviting, leaving, kicking, banning,
// knocking and the member lists.
func (a *API) mountMembership(r chi.Router, v string) {
	r.Post(v+"/join/{roomIdOrAlias}", a.requireAuth(a.joinRoomOrAlias))
	r.Post(v+"/knock/{roomIdOrAlias}", a.requireAuth(noGuests(a.knock)))
	r.Post(v+"/rooms/{roomId}/join", a.requireAuth(a.joinRoom))
	r.Post(v+"/rooms/{roomId}/leave", a.requireAuth(a.leave))
	r.Post(v+"/rooms/{roomId}/forget", a.requireAuth(a.forget))
	r.Post(v+"/rooms/{roomId}/invite", a.requireAuth(noGuests(a.targeted(a.Rooms.Invite))))
	r.Post(v+"/rooms/{roomId}/kick", a.requireAuth(noGuests(a.targeted(a.Rooms.Kick))))
	r.Post(v+"/rooms/{roomId}/ban", a.requireAuth(noGuests(a.targeted(a.Rooms.Ban))))
	r.Post(v+"/rooms/{roomId}/unban", a.requireAuth(noGuests(a.targeted(a.Rooms.Unban))))
	r.Get(v+"/rooms/{roomId}/members", a.requireAuth(a.members))
	r.Get(v+"/rooms/{roomId}/joined_members", a.requireAuth(a.joinedMembers))
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// joinFunc joins or knocks, through the given servers when the room is
// elsewhere.
type joinFunc func(ctx context.Context, user id.UserID, room id.RoomID, via []id.ServerName, reason string) (id.RoomID, error)

// joinFor is the join a requester may do: guests only where guest access
// is allowed, and only in rooms this server is in.
func (a *API) joinFor(r *http.Request) joinFunc {
	if requesterFrom(r.Context()).IsGuest {
		return func(ctx context.Context, user id.UserID, room id.RoomID, _ []id.ServerName, reason string) (id.RoomID, error) {
			return a.Rooms.JoinAsGuest(ctx, user, room, reason)
		}
	}
	return a.Rooms.JoinVia
}

// noGuests refuses guest accounts the endpoints the spec's "Guest access"
// list does not name, with M_GUEST_ACCESS_FORBIDDEN.
func noGuests(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if requesterFrom(r.Context()).IsGuest {
			writeMatrixError(w, mxerr.GuestAccessForbidden.Msg("guest accounts may not do this"))
			return
		}
		next(w, r)
	}
}

// joinRoomOrAlias handles POST /_matrix/client/v3/join/{roomIdOrAlias}.
func (a *API) joinRoomOrAlias(w http.ResponseWriter, r *http.Request) {
	a.joinOrKnock(w, r, pathParam(r, "roomIdOrAlias"), a.joinFor(r))
}

// knock handles POST /_matrix/client/v3/knock/{roomIdOrAlias}.
func (a *API) knock(w http.ResponseWriter, r *http.Request) {
	a.joinOrKnock(w, r, pathParam(r, "roomIdOrAlias"), a.Rooms.KnockVia)
}

// joinRoom handles POST /_matrix/client/v3/rooms/{roomId}/join.
func (a *API) joinRoom(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.joinOrKnock(w, r, string(room), a.joinFor(r))
}

func (a *API) joinOrKnock(w http.ResponseWriter, r *http.Request, target string, do joinFunc) {
	var body reasonBody
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	via, err := viaParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	room, servers, err := a.Rooms.ResolveJoinTarget(r.Context(), target)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	joined, err := do(r.Context(), requesterFrom(r.Context()).UserID, room, append(via, servers...), body.Reason)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]id.RoomID{"room_id": joined})
}

// viaParams are the servers a client names to join a room through: via
// (v1.12+) and the deprecated server_name, in that order.
func viaParams(r *http.Request) ([]id.ServerName, error) {
	q := r.URL.Query()
	var out []id.ServerName
	for _, s := range append(q["via"], q["server_name"]...) {
		srv, err := id.ParseServerName(s)
		if err != nil {
			return nil, mxerr.InvalidParam.Msgf("invalid server name %q", s)
		}
		out = append(out, srv)
	}
	return out, nil
}

// leave handles POST /_matrix/client/v3/rooms/{roomId}/leave.
func (a *API) leave(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var body reasonBody
	if err := a.decodeOptionalJSON(w, r, &body); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Rooms.Leave(r.Context(), requesterFrom(r.Context()).UserID, room, body.Reason); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// forget handles POST /_matrix/client/v3/rooms/{roomId}/forget.
func (a *API) forget(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.Rooms.Forget(r.Context(), requesterFrom(r.Context()).UserID, room); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, emptyObject)
}

// targeted handles the endpoints with a {user_id, reason} body: POST
// /rooms/{roomId}/invite, kick, ban and unban.
func (a *API) targeted(do func(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		room, err := roomParam(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		var body struct {
			UserID string `json:"user_id"`
			Reason string `json:"reason"`
		}
		if err := a.decodeJSON(w, r, &body); err != nil {
			a.writeError(w, r, err)
			return
		}
		if body.UserID == "" {
			a.writeError(w, r, mxerr.MissingParam.Msg("user_id is required"))
			return
		}
		target, err := id.ParseUserID(body.UserID)
		if err != nil {
			a.writeError(w, r, mxerr.InvalidParam.Msg("user_id is not a user id"))
			return
		}
		if err := do(r.Context(), requesterFrom(r.Context()).UserID, room, target, body.Reason); err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, emptyObject)
	}
}

// members handles GET /_matrix/client/v3/rooms/{roomId}/members.
func (a *API) members(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	mq := rooms.MembersQuery{At: q.Get("at"), Membership: q.Get("membership"), NotMembership: q.Get("not_membership")}
	v := viewer(r)
	evs, err := a.Rooms.Members(r.Context(), v.User, room, mq)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"chunk": a.Rooms.ClientEvents(evs, v)})
}

// joinedMembers handles GET /_matrix/client/v3/rooms/{roomId}/joined_members.
func (a *API) joinedMembers(w http.ResponseWriter, r *http.Request) {
	room, err := roomParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	joined, err := a.Rooms.JoinedMembers(r.Context(), requesterFrom(r.Context()).UserID, room)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"joined": joined})
}
