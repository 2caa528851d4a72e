package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// inviteStateTypes are the state events an invite carries to the
// invitee's server (invite_room_state; the create event is required from
// v1.16 on), with the inviter's member event.
var inviteStateTypes = []string{
	auth.TypeCreate, auth.TypeJoinRules, "m.room.name", "m.room.avatar", "m.room.topic",
	"m.room.canonical_alias", "m.room.encryption",
}

// errHeadMoved: the room changed while the invitee's server signed.
var errHeadMoved = errors.New("rooms: the room changed while the invite was signed")

// inviteRemote invites a user of another server (server-server API,
// "Inviting to a room"): the invite is built on the head, signed by the
// invitee's server through PUT /v2/invite, and only then persisted (the
// outbound sender delivers it to the room's other servers). When the room
// moved on meanwhile, it is built again.
func (s *Service) inviteRemote(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error {
	content := memberContent("invite", reason, nil)
	key := string(target)
	return s.inviteThroughInvitee(ctx, room, target, draft{Sender: sender, Type: auth.TypeMember, StateKey: &key, Content: mustJSON(content)})
}

// inviteThroughInvitee builds the invite d on the head, has the invitee's
// server sign it and persists it unless the room moved on meanwhile, in
// which case it starts again.
func (s *Service) inviteThroughInvitee(ctx context.Context, room id.RoomID, target id.UserID, d draft) error {
	for range 3 {
		h, err := s.store.Head(ctx, room)
		if err != nil {
			return err
		}
		ev, err := s.buildEvent(h, d)
		if err != nil {
			return err
		}
		signed, err := s.askInvitee(ctx, h, ev, target)
		if err != nil {
			return err
		}
		_, err = s.persist(ctx, AppendRequest{RoomID: room, Build: []BuildFunc{func(now *Head) (*event.Event, error) {
			if now.Seq != h.Seq {
				return nil, errHeadMoved
			}
			return signed, nil
		}}})
		if !errors.Is(err, errHeadMoved) {
			return err
		}
	}
	return mxerr.Unknown.WithStatus(503).Msg("the room is too busy to invite; try again")
}

// askInvitee sends ev to the invitee's server and checks its answer: the
// same event, now signed by that server too.
func (s *Service) askInvitee(ctx context.Context, h *Head, ev *event.Event, target id.UserID) (*event.Event, error) {
	var strippedState []json.RawMessage
	for _, typ := range inviteStateTypes {
		if st := h.State.Get(typ, ""); st != nil {
			strippedState = append(strippedState, st.Raw())
		}
	}
	if m := h.State.Get(auth.TypeMember, string(ev.Sender())); m != nil {
		strippedState = append(strippedState, m.Raw())
	}
	raw, err := s.fed.Remote.SendInvite(ctx, target.Server(), ev, strippedState)
	if err != nil {
		return nil, err
	}
	signed, err := event.Parse(h.Version, raw)
	if err != nil || signed.EventID() != ev.EventID() {
		return nil, mxerr.Unknown.WithStatus(502).Msgf("%s answered the invite with another event", target.Server())
	}
	if _, ok := signed.Signatures()[target.Server()]; !ok {
		return nil, mxerr.Unknown.WithStatus(502).Msgf("%s did not sign the invite", target.Server())
	}
	if err := s.verifyPDU(ctx, signed); err != nil {
		return nil, mxerr.Unknown.WithStatus(502).Msgf("%s signed the invite wrongly: %v", target.Server(), err)
	}
	return signed, nil
}

// InviteRequest is a PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
// request.
type InviteRequest struct {
	Origin          id.ServerName
	RoomID          id.RoomID
	EventID         id.EventID
	RoomVersion     roomversion.ID
	Event           json.RawMessage
	InviteRoomState []json.RawMessage
}

// ReceiveInvite is the invitee's server's side of an invite: it checks
// that the invite comes from a user of origin and is for one of our
// users who exists, signs it, and (when we are not in the room, so it
// will not arrive in a transaction) stores it with the stripped state so
// that the user sees it in /sync. It returns the event signed by us.
func (s *Service) ReceiveInvite(ctx context.Context, req InviteRequest) (*event.Event, error) {
	if !s.fed.set {
		return nil, errNoFederation
	}
	v, ok := roomversion.Lookup(req.RoomVersion)
	if !ok {
		return nil, mxerr.IncompatibleRoomVersion.Msgf("this server does not support room version %q", req.RoomVersion).
			With("room_version", string(req.RoomVersion))
	}
	ev, err := event.Parse(v, req.Event)
	if err != nil {
		return nil, mxerr.BadJSON.Msgf("invalid event: %v", err)
	}
	var target id.UserID
	if sk := ev.StateKey(); sk != nil {
		target, _ = id.ParseUserID(*sk)
	}
	switch {
	case ev.EventID() != req.EventID:
		return nil, mxerr.InvalidParam.Msg("the event id does not match the path")
	case ev.RoomID() != req.RoomID:
		return nil, mxerr.InvalidParam.Msg("the room id does not match the path")
	case ev.Type() != auth.TypeMember || ev.Membership() != "invite":
		return nil, mxerr.InvalidParam.Msg("the event is not an invite")
	case ev.Sender().Server() != req.Origin:
		return nil, mxerr.InvalidParam.Msg("the sender does not belong to the requesting server")
	case target == "" || target.Server() != s.cfg.ServerName:
		return nil, mxerr.InvalidParam.Msg("the invited user does not belong to this server")
	}
	if s.fed.UserExists != nil {
		exists, err := s.fed.UserExists(ctx, target)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, mxerr.NotFound.Msg("the invited user does not exist")
		}
	}
	h, err := s.store.Head(ctx, req.RoomID)
	if err != nil && !errors.Is(err, ErrRoomNotFound) {
		return nil, err
	}
	if h != nil {
		if err := checkACL(h.State, req.Origin); err != nil {
			return nil, err
		}
	}
	stripped, err := inviteRoomState(v, req.RoomID, req.InviteRoomState)
	if err != nil {
		return nil, err
	}
	if err := s.verifyPDU(ctx, ev); err != nil {
		return nil, err
	}
	signed, err := s.signAsResident(ev)
	if err != nil {
		return nil, err
	}
	if h != nil && serverInRoom(h.State, s.cfg.ServerName) {
		return signed, nil
	}
	if s.fed.Invites == nil {
		return nil, errNoFederation
	}
	if err := s.fed.Invites.StoreRemoteMembership(ctx, signed, stripped); err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "remote invite", slog.String("room_id", string(req.RoomID)),
		slog.String("user_id", string(target)), slog.String("origin", string(req.Origin)))
	return signed, nil
}

// inviteRoomState turns invite_room_state into stripped state events. From
// v1.16 its entries are full events of the room's version and the create
// event is required; older servers send stripped events, which rooms
// before version 12 still accept (the spec's migration note).
func inviteRoomState(v roomversion.Version, room id.RoomID, entries []json.RawMessage) ([]json.RawMessage, error) {
	strict := v.CreateEventDefinesRoomID
	hasCreate := false
	out := make([]json.RawMessage, 0, len(entries))
	for _, raw := range entries {
		if ev, err := event.Parse(v, raw); err == nil {
			inRoom := ev.RoomID() == room
			if ev.Type() == auth.TypeCreate && v.CreateEventDefinesRoomID {
				inRoom = "!"+string(ev.EventID())[1:] == string(room)
			}
			if !inRoom {
				return nil, mxerr.InvalidParam.Msg("invite_room_state holds an event of another room")
			}
			if ev.StateKey() == nil {
				continue
			}
			hasCreate = hasCreate || ev.Type() == auth.TypeCreate
			out = append(out, mustJSON(StrippedEvent{Content: ev.Content(), Sender: ev.Sender(), StateKey: *ev.StateKey(), Type: ev.Type()}))
			continue
		}
		if strict {
			return nil, mxerr.InvalidParam.Msg("invite_room_state holds an entry that is not an event of the room's version")
		}
		obj, err := canonicaljson.Parse(raw, false)
		if err != nil || obj.Kind() != canonicaljson.Object {
			continue
		}
		typ, ok1 := obj.GetString("type")
		_, ok2 := obj.GetString("state_key")
		if !ok1 || !ok2 {
			continue
		}
		hasCreate = hasCreate || typ == auth.TypeCreate
		out = append(out, raw)
	}
	if strict && !hasCreate {
		return nil, mxerr.InvalidParam.Msg("invite_room_state has no m.room.create event")
	}
	return out, nil
}

// ExchangeThirdPartyInvite answers PUT
// /_matrix/federation/v1/exchange_third_party_invite/{roomId}: origin's
// user has claimed a third-party invite of this room (the identity
// server's signed object in content.third_party_invite). We build the
// invite on the head with the original inviter as sender — the auth rules
// check the token and the identity server's signature against the room's
// m.room.third_party_invite — and issue it as any invite to a remote user.
func (s *Service) ExchangeThirdPartyInvite(ctx context.Context, origin id.ServerName, room id.RoomID, raw []byte) error {
	if !s.fed.set {
		return errNoFederation
	}
	if _, err := s.residentHead(ctx, origin, room); err != nil {
		return err
	}
	var req struct {
		Type     string          `json:"type"`
		RoomID   id.RoomID       `json:"room_id"`
		Sender   string          `json:"sender"`
		StateKey string          `json:"state_key"`
		Content  json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return mxerr.BadJSON.Msg("the body is not a membership event")
	}
	sender, err1 := id.ParseUserID(req.Sender)
	target, err2 := id.ParseUserID(req.StateKey)
	var content struct {
		Membership       string          `json:"membership"`
		ThirdPartyInvite json.RawMessage `json:"third_party_invite"`
	}
	_ = json.Unmarshal(req.Content, &content)
	switch {
	case req.Type != auth.TypeMember || err1 != nil || err2 != nil:
		return mxerr.InvalidParam.Msg("the body is not an m.room.member event")
	case req.RoomID != room:
		return mxerr.InvalidParam.Msg("the room id does not match the path")
	case content.Membership != "invite" || len(content.ThirdPartyInvite) == 0:
		return mxerr.InvalidParam.Msg("the event is not a third-party invite")
	case target.Server() != origin:
		return mxerr.Forbidden.Msg("the invited user does not belong to the requesting server")
	}
	key := string(target)
	d := draft{Sender: sender, Type: auth.TypeMember, StateKey: &key, Content: req.Content}
	return s.inviteThroughInvitee(ctx, room, target, d)
}
