package federation

import (
	"encoding/json"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// invite handles PUT /_matrix/federation/v2/invite/{roomId}/{eventId}:
// one of our users is invited by a user of the origin; we sign the
// invite and answer it (server-server API, "Inviting to a room").
func (a *API) invite(w http.ResponseWriter, r *http.Request) {
	room, eventID, err := roomAndEvent(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req struct {
		RoomVersion     *string           `json:"room_version"`
		Event           json.RawMessage   `json:"event"`
		InviteRoomState []json.RawMessage `json:"invite_room_state"`
	}
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if req.RoomVersion == nil || len(req.Event) == 0 {
		a.writeError(w, r, mxerr.MissingParam.Msg("room_version and event are required"))
		return
	}
	signed, err := a.deps.Membership.ReceiveInvite(r.Context(), rooms.InviteRequest{
		Origin: Origin(r.Context()), RoomID: room, EventID: eventID,
		RoomVersion: roomversion.ID(*req.RoomVersion), Event: req.Event, InviteRoomState: req.InviteRoomState,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": signed})
}

// inviteV1 handles the deprecated PUT
// /_matrix/federation/v1/invite/{roomId}/{eventId} of older servers: the
// body is the invite event itself, with the stripped state in
// unsigned.invite_room_state, and the room's version is 1 or 2 (the spec:
// a v1 invite must be assumed to be for one of them; the create event of
// the stripped state says which, version 1 when it does not). The answer
// is [200, {"event": …}].
func (a *API) inviteV1(w http.ResponseWriter, r *http.Request) {
	room, eventID, err := roomAndEvent(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req struct {
		Unsigned struct {
			InviteRoomState []json.RawMessage `json:"invite_room_state"`
		} `json:"unsigned"`
	}
	if err := a.decodeJSON(w, r, &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	version := roomversion.ID("1")
	for _, raw := range req.Unsigned.InviteRoomState {
		var st struct {
			Type    string `json:"type"`
			Content struct {
				RoomVersion string `json:"room_version"`
			} `json:"content"`
		}
		if json.Unmarshal(raw, &st) == nil && st.Type == "m.room.create" && st.Content.RoomVersion == "2" {
			version = "2"
		}
	}
	signed, err := a.deps.Membership.ReceiveInvite(r.Context(), rooms.InviteRequest{
		Origin: Origin(r.Context()), RoomID: room, EventID: eventID,
		RoomVersion: version, Event: body(r), InviteRoomState: req.Unsigned.InviteRoomState,
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []any{200, map[string]any{"event": signed}})
}

// exchangeThirdPartyInvite handles PUT
// /_matrix/federation/v1/exchange_third_party_invite/{roomId}.
func (a *API) exchangeThirdPartyInvite(w http.ResponseWriter, r *http.Request) {
	room, err := id.ParseRoomID(param(r, "roomId"))
	if err != nil {
		a.writeError(w, r, mxerr.InvalidParam.Msg("invalid room id"))
		return
	}
	if err := a.deps.Membership.ExchangeThirdPartyInvite(r.Context(), Origin(r.Context()), room, body(r)); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}
