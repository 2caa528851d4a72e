package fedclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/id"
)

// Typed calls of the membership handshakes (server-server API, "Joining
// Rooms", "Leaving Rooms", "Inviting to a room", "Knocking upon a room").

// MakeResponse is the answer of make_join, make_leave and make_knock.
type MakeResponse struct {
	// RoomVersion is "" when the remote did not say; the spec then means
	// room version 1 or 2.
	RoomVersion string          `json:"room_version"`
	Event       json.RawMessage `json:"event"`
}

// SendJoinResponse is the answer of PUT /v2/send_join.
type SendJoinResponse struct {
	Origin         string            `json:"origin"`
	State          []json.RawMessage `json:"state"`
	AuthChain      []json.RawMessage `json:"auth_chain"`
	Event          json.RawMessage   `json:"event,omitempty"`
	MembersOmitted bool              `json:"members_omitted"`
	ServersInRoom  []string          `json:"servers_in_room,omitempty"`
}

// SendKnockResponse is the answer of PUT /v1/send_knock.
type SendKnockResponse struct {
	KnockRoomState []json.RawMessage `json:"knock_room_state"`
}

// InviteRequest is the body of PUT /v2/invite.
type InviteRequest struct {
	RoomVersion     string            `json:"room_version"`
	Event           json.RawMessage   `json:"event"`
	InviteRoomState []json.RawMessage `json:"invite_room_state"`
}

// InviteResponse is the answer of PUT /v2/invite.
type InviteResponse struct {
	Event json.RawMessage `json:"event"`
}

// MakeMembership calls GET /_matrix/federation/v1/make_{membership}/{roomId}/{userId}
// with the room versions we support as ver; membership is "join",
// "leave" or "knock".
func (c *Client) MakeMembership(ctx context.Context, dest id.ServerName, membership string, room id.RoomID, user id.UserID, versions []string) (*MakeResponse, error) {
	switch membership {
	case "join", "leave", "knock":
	default:
		return nil, fmt.Errorf("make_%s: not a membership handshake", membership)
	}
	path := "/_matrix/federation/v1/make_" + membership + "/" + url.PathEscape(string(room)) + "/" + url.PathEscape(string(user))
	if membership != "leave" && len(versions) > 0 {
		q := url.Values{"ver": versions}
		path += "?" + q.Encode()
	}
	var resp MakeResponse
	if err := c.Do(ctx, dest, http.MethodGet, path, nil, &resp); err != nil {
		return nil, err
	}
	if len(resp.Event) == 0 {
		return nil, fmt.Errorf("make_%s: %s answered without an event", membership, dest)
	}
	return &resp, nil
}

// eventPath is /_matrix/federation/{version}/{endpoint}/{roomId}/{eventId}.
func eventPath(version, endpoint string, room id.RoomID, eventID id.EventID) string {
	return strings.Join([]string{"/_matrix/federation", version, endpoint,
		url.PathEscape(string(room)), url.PathEscape(string(eventID))}, "/")
}

// SendJoin calls PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
// (the full state: omit_members is not asked for).
func (c *Client) SendJoin(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID, ev json.RawMessage) (*SendJoinResponse, error) {
	var resp SendJoinResponse
	if err := c.Do(ctx, dest, http.MethodPut, eventPath("v2", "send_join", room, eventID), ev, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// SendLeave calls PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}.
func (c *Client) SendLeave(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID, ev json.RawMessage) error {
	return c.Do(ctx, dest, http.MethodPut, eventPath("v2", "send_leave", room, eventID), ev, nil)
}

// SendKnock calls PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}.
func (c *Client) SendKnock(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID, ev json.RawMessage) (*SendKnockResponse, error) {
	var resp SendKnockResponse
	if err := c.Do(ctx, dest, http.MethodPut, eventPath("v1", "send_knock", room, eventID), ev, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// SendInviteV1 calls the deprecated PUT
// /_matrix/federation/v1/invite/{roomId}/{eventId}, for servers that lack
// v2 (rooms of version 1 or 2 only): the body is the event itself with
// the stripped state in unsigned.invite_room_state, the answer [200,
// {"event": …}]. It returns the event as the invitee's server signed it.
func (c *Client) SendInviteV1(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID, ev json.RawMessage, inviteRoomState []json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(ev, &obj); err != nil {
		return nil, fmt.Errorf("invite v1: the event is not an object: %w", err)
	}
	unsigned := map[string]json.RawMessage{}
	if raw, ok := obj["unsigned"]; ok {
		_ = json.Unmarshal(raw, &unsigned)
	}
	if inviteRoomState == nil {
		inviteRoomState = []json.RawMessage{}
	}
	state, err := json.Marshal(inviteRoomState)
	if err != nil {
		return nil, fmt.Errorf("invite v1: %w", err)
	}
	unsigned["invite_room_state"] = state
	if obj["unsigned"], err = json.Marshal(unsigned); err != nil {
		return nil, fmt.Errorf("invite v1: %w", err)
	}
	var resp []json.RawMessage
	if err := c.Do(ctx, dest, http.MethodPut, eventPath("v1", "invite", room, eventID), obj, &resp); err != nil {
		return nil, err
	}
	var inner InviteResponse
	if len(resp) != 2 || json.Unmarshal(resp[1], &inner) != nil || len(inner.Event) == 0 {
		return nil, fmt.Errorf("invite v1: %s answered without [200, {\"event\": …}]", dest)
	}
	return inner.Event, nil
}

// SendInvite calls PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
// and returns the event as the invitee's server signed it.
func (c *Client) SendInvite(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID, req InviteRequest) (json.RawMessage, error) {
	if req.InviteRoomState == nil {
		req.InviteRoomState = []json.RawMessage{}
	}
	var resp InviteResponse
	if err := c.Do(ctx, dest, http.MethodPut, eventPath("v2", "invite", room, eventID), req, &resp); err != nil {
		return nil, err
	}
	if len(resp.Event) == 0 {
		return nil, fmt.Errorf("invite: %s answered without an event", dest)
	}
	return resp.Event, nil
}
