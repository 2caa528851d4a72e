package federation

import (
	"context"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Membership is the resident side of the membership handshakes and the
// invitee side of invites (*rooms.Service; rooms/federated_*.go). The
// domain checks the server ACL, that we are in the room and that the user
// or sender belongs to the origin.
type Membership interface {
	MakeJoin(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID, versions []roomversion.ID) (*rooms.Template, error)
	SendJoin(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte, omitMembers bool) (*rooms.JoinAnswer, error)
	MakeLeave(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID) (*rooms.Template, error)
	SendLeave(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte) error
	MakeKnock(ctx context.Context, origin id.ServerName, room id.RoomID, user id.UserID, versions []roomversion.ID) (*rooms.Template, error)
	SendKnock(ctx context.Context, origin id.ServerName, room id.RoomID, eventID id.EventID, raw []byte) ([]rooms.StrippedEvent, error)
	ReceiveInvite(ctx context.Context, req rooms.InviteRequest) (*event.Event, error)
	ExchangeThirdPartyInvite(ctx context.Context, origin id.ServerName, room id.RoomID, raw []byte) error
}

var _ Membership = (*rooms.Service)(nil)

// membershipRoutes mounts the membership handshakes (server-server API,
// "Joining Rooms", "Knocking upon a room", "Inviting to a room",
// "Leaving Rooms").
func (a *API) membershipRoutes(r chi.Router) {
	if a.deps.Membership == nil {
		return
	}
	const v1, v2 = "/_matrix/federation/v1", "/_matrix/federation/v2"
	r.Get(v1+"/make_join/{roomId}/{userId}", a.makeJoin)
	r.Put(v1+"/send_join/{roomId}/{eventId}", a.sendJoinV1)
	r.Put(v2+"/send_join/{roomId}/{eventId}", a.sendJoin)
	r.Get(v1+"/make_leave/{roomId}/{userId}", a.makeLeave)
	r.Put(v1+"/send_leave/{roomId}/{eventId}", a.sendLeaveV1)
	r.Put(v2+"/send_leave/{roomId}/{eventId}", a.sendLeave)
	r.Get(v1+"/make_knock/{roomId}/{userId}", a.makeKnock)
	r.Put(v1+"/send_knock/{roomId}/{eventId}", a.sendKnock)
	r.Put(v1+"/invite/{roomId}/{eventId}", a.inviteV1)
	r.Put(v2+"/invite/{roomId}/{eventId}", a.invite)
	r.Put(v1+"/exchange_third_party_invite/{roomId}", a.exchangeThirdPartyInvite)
}

// param is a path parameter, unescaped.
func param(r *http.Request, name string) string {
	raw := chi.URLParam(r, name)
	if s, err := url.PathUnescape(raw); err == nil {
		return s
	}
	return raw
}

// roomAndEvent are the {roomId} and {eventId} of a send_* or invite
// endpoint, validated.
func roomAndEvent(r *http.Request) (id.RoomID, id.EventID, error) {
	room, err := id.ParseRoomID(param(r, "roomId"))
	if err != nil {
		return "", "", mxerr.InvalidParam.Msg("invalid room id")
	}
	ev, err := id.ParseEventID(param(r, "eventId"))
	if err != nil {
		return "", "", mxerr.InvalidParam.Msg("invalid event id")
	}
	return room, ev, nil
}

// roomAndUser are the {roomId} and {userId} of a make_* endpoint,
// validated.
func roomAndUser(r *http.Request) (id.RoomID, id.UserID, error) {
	room, err := id.ParseRoomID(param(r, "roomId"))
	if err != nil {
		return "", "", mxerr.InvalidParam.Msg("invalid room id")
	}
	user, err := id.ParseUserID(param(r, "userId"))
	if err != nil {
		return "", "", mxerr.InvalidParam.Msg("invalid user id")
	}
	return room, user, nil
}

// boolParam reads a boolean query parameter: absent is false, "true" and
// "false" are themselves, anything else is M_INVALID_PARAM.
func boolParam(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, mxerr.InvalidParam.Msgf("%s must be true or false", name)
	}
}

// versionsParam is the repeated ver query parameter.
func versionsParam(r *http.Request) []roomversion.ID {
	var out []roomversion.ID
	for _, v := range r.URL.Query()["ver"] {
		out = append(out, roomversion.ID(v))
	}
	return out
}

// templateBody is a make_* answer.
func templateBody(t *rooms.Template) map[string]any {
	return map[string]any{"room_version": t.Version, "event": t.Event}
}

// makeJoin handles GET /_matrix/federation/v1/make_join/{roomId}/{userId}.
func (a *API) makeJoin(w http.ResponseWriter, r *http.Request) {
	room, user, err := roomAndUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t, err := a.deps.Membership.MakeJoin(r.Context(), Origin(r.Context()), room, user, versionsParam(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, templateBody(t))
}

// joinAnswer runs send_join and builds the v2 answer; omitMembers is the
// v2 omit_members query parameter (MSC3706: membership events left out of
// state, servers_in_room then required).
func (a *API) joinAnswer(r *http.Request, omitMembers bool) (map[string]any, error) {
	room, eventID, err := roomAndEvent(r)
	if err != nil {
		return nil, err
	}
	ans, err := a.deps.Membership.SendJoin(r.Context(), Origin(r.Context()), room, eventID, body(r), omitMembers)
	if err != nil {
		return nil, err
	}
	servers := ans.ServersInRoom
	if servers == nil {
		servers = []id.ServerName{}
	}
	return map[string]any{
		"origin":          a.deps.Config.ServerName,
		"event":           ans.Event,
		"state":           nonNil(ans.State),
		"auth_chain":      nonNil(ans.AuthChain),
		"members_omitted": ans.MembersOmitted,
		"servers_in_room": servers,
	}, nil
}

func nonNil(evs []*event.Event) []*event.Event {
	if evs == nil {
		return []*event.Event{}
	}
	return evs
}

// sendJoin handles PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}.
func (a *API) sendJoin(w http.ResponseWriter, r *http.Request) {
	omit, err := boolParam(r, "omit_members")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ans, err := a.joinAnswer(r, omit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// sendJoinV1 handles the deprecated PUT /_matrix/federation/v1/send_join,
// whose answer is the v2 one wrapped as [200, answer].
func (a *API) sendJoinV1(w http.ResponseWriter, r *http.Request) {
	ans, err := a.joinAnswer(r, false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []any{200, ans})
}

// makeLeave handles GET /_matrix/federation/v1/make_leave/{roomId}/{userId}.
func (a *API) makeLeave(w http.ResponseWriter, r *http.Request) {
	room, user, err := roomAndUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t, err := a.deps.Membership.MakeLeave(r.Context(), Origin(r.Context()), room, user)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, templateBody(t))
}

func (a *API) doSendLeave(r *http.Request) error {
	room, eventID, err := roomAndEvent(r)
	if err != nil {
		return err
	}
	return a.deps.Membership.SendLeave(r.Context(), Origin(r.Context()), room, eventID, body(r))
}

// sendLeave handles PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}.
func (a *API) sendLeave(w http.ResponseWriter, r *http.Request) {
	if err := a.doSendLeave(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// sendLeaveV1 handles the deprecated v1 send_leave: [200, {}].
func (a *API) sendLeaveV1(w http.ResponseWriter, r *http.Request) {
	if err := a.doSendLeave(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []any{200, map[string]any{}})
}

// makeKnock handles GET /_matrix/federation/v1/make_knock/{roomId}/{userId}.
func (a *API) makeKnock(w http.ResponseWriter, r *http.Request) {
	room, user, err := roomAndUser(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	versions := versionsParam(r)
	if len(versions) == 0 {
		a.writeError(w, r, mxerr.MissingParam.Msg("ver is required"))
		return
	}
	t, err := a.deps.Membership.MakeKnock(r.Context(), Origin(r.Context()), room, user, versions)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, templateBody(t))
}

// sendKnock handles PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}.
func (a *API) sendKnock(w http.ResponseWriter, r *http.Request) {
	room, eventID, err := roomAndEvent(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	stripped, err := a.deps.Membership.SendKnock(r.Context(), Origin(r.Context()), room, eventID, body(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if stripped == nil {
		stripped = []rooms.StrippedEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"knock_room_state": stripped})
}
