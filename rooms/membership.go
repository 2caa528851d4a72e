package rooms

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
)

// ResolveRoom turns a room id or alias (the {roomIdOrAlias} of /join and
// /knock) into a room id. Only local aliases resolve until federation
// exists.
func (s *Service) ResolveRoom(ctx context.Context, roomIDOrAlias string) (id.RoomID, error) {
	if strings.HasPrefix(roomIDOrAlias, "#") {
		alias, err := id.ParseRoomAlias(roomIDOrAlias)
		if err != nil {
			return "", mxerr.InvalidParam.Msg("invalid room alias")
		}
		return s.store.ResolveAlias(ctx, alias)
	}
	room, err := id.ParseRoomID(roomIDOrAlias)
	if err != nil {
		return "", mxerr.InvalidParam.Msg("invalid room id or alias")
	}
	return room, nil
}

// memberContent is the content of a membership event.
func memberContent(membership, reason string, extra map[string]any) map[string]any {
	c := map[string]any{"membership": membership}
	if reason != "" {
		c["reason"] = reason
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// setMembership sends target's m.room.member event.
func (s *Service) setMembership(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, content map[string]any) (id.EventID, error) {
	s.addProfile(ctx, target, content)
	key := string(target)
	return s.send(ctx, room, nil, draft{Sender: sender, Type: auth.TypeMember, StateKey: &key, Content: mustJSON(content)})
}

// Join joins the user to a room (POST /join/{roomIdOrAlias}, POST
// /rooms/{roomId}/join). Joining a room one is joined to already sends
// nothing. In a restricted room the join is authorised by a local member
// who may invite (rooms/v8, join_authorised_via_users_server).
func (s *Service) Join(ctx context.Context, user id.UserID, room id.RoomID, reason string) (id.RoomID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return "", err
	}
	if h.State.Membership(string(user)) == "join" {
		return room, nil
	}
	extra := map[string]any{}
	if via := s.joinAuthoriser(ctx, h, user); via != "" {
		extra["join_authorised_via_users_server"] = string(via)
	}
	if _, err := s.setMembership(ctx, user, room, user, memberContent("join", reason, extra)); err != nil {
		return "", err
	}
	return room, nil
}

// joinAuthoriser picks, for a user joining a restricted room uninvited, a
// local member who may invite, when the user is in one of the rooms the
// allow list names (client-server API, "Restricted rooms").
func (s *Service) joinAuthoriser(ctx context.Context, h *Head, user id.UserID) id.UserID {
	jrEv := h.State.Get(auth.TypeJoinRules, "")
	if jrEv == nil || !h.Version.RestrictedJoins {
		return ""
	}
	jr, err := auth.ParseJoinRules(jrEv.Content())
	if err != nil || (jr.JoinRule != auth.JoinRestricted && jr.JoinRule != auth.JoinKnockRestricted) {
		return ""
	}
	if m := h.State.Membership(string(user)); m == "invite" || m == "join" {
		return ""
	}
	allowed := false
	for _, a := range jr.Allow {
		if a.Type != "m.room_membership" || a.RoomID == "" {
			continue
		}
		if other, err := s.store.Head(ctx, a.RoomID); err == nil && other.State.Membership(string(user)) == "join" {
			allowed = true
			break
		}
	}
	if !allowed {
		return ""
	}
	pl, err := auth.LoadPowerLevels(h.Version, h.State)
	if err != nil {
		return ""
	}
	for k, ev := range h.State {
		if k.Type != auth.TypeMember || ev.Membership() != "join" {
			continue
		}
		u := id.UserID(k.StateKey)
		if u.Server() == s.cfg.ServerName && pl.UserLevel(u) >= pl.Invite {
			return u
		}
	}
	return ""
}

// Invite invites target (POST /rooms/{roomId}/invite).
func (s *Service) Invite(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	switch h.State.Membership(string(target)) {
	case "join":
		return mxerr.Forbidden.Msg("the user is already in the room")
	case "ban":
		return mxerr.Forbidden.Msg("the user is banned from the room")
	}
	if s.fed.set && target.Server() != s.cfg.ServerName {
		return s.inviteRemote(ctx, sender, room, target, reason)
	}
	_, err = s.setMembership(ctx, sender, room, target, memberContent("invite", reason, nil))
	return err
}

// Leave leaves a room, or rejects an invite or retracts a knock (POST
// /rooms/{roomId}/leave).
func (s *Service) Leave(ctx context.Context, user id.UserID, room id.RoomID, reason string) error {
	if remote, err := s.leaveIsRemote(ctx, user, room); err != nil || remote {
		if err != nil {
			return err
		}
		return s.leaveRemote(ctx, user, room, reason)
	}
	_, err := s.setMembership(ctx, user, room, user, memberContent("leave", reason, nil))
	return err
}

// Kick removes target (POST /rooms/{roomId}/kick); the target must be in
// the room, invited or knocking, which the auth rules alone do not demand.
func (s *Service) Kick(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	switch h.State.Membership(string(target)) {
	case "join", "invite", "knock":
	default:
		return mxerr.Forbidden.Msg("the user is not in the room")
	}
	_, err = s.setMembership(ctx, sender, room, target, memberContent("leave", reason, nil))
	return err
}

// Ban bans target (POST /rooms/{roomId}/ban).
func (s *Service) Ban(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error {
	_, err := s.setMembership(ctx, sender, room, target, memberContent("ban", reason, nil))
	return err
}

// Unban lifts a ban (POST /rooms/{roomId}/unban).
func (s *Service) Unban(ctx context.Context, sender id.UserID, room id.RoomID, target id.UserID, reason string) error {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	if h.State.Membership(string(target)) != "ban" {
		return mxerr.Forbidden.Msg("the user is not banned")
	}
	_, err = s.setMembership(ctx, sender, room, target, memberContent("leave", reason, nil))
	return err
}

// Knock asks to join (POST /knock/{roomIdOrAlias}).
func (s *Service) Knock(ctx context.Context, user id.UserID, room id.RoomID, reason string) (id.RoomID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return "", err
	}
	if !h.Version.Knocking {
		return "", mxerr.Forbidden.Msgf("room version %s does not support knocking", h.Version.ID)
	}
	if _, err := s.setMembership(ctx, user, room, user, memberContent("knock", reason, nil)); err != nil {
		return "", err
	}
	return room, nil
}

// errStillInRoom is forget's refusal for a member (Synapse's errcode).
var errStillInRoom = &mxerr.Error{Code: "M_UNKNOWN", Status: http.StatusBadRequest, Message: "the user is still in the room"}

// Forget forgets a room one has left (POST /rooms/{roomId}/forget).
func (s *Service) Forget(ctx context.Context, user id.UserID, room id.RoomID) error {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	switch h.State.Membership(string(user)) {
	case "join", "invite", "knock":
		return errStillInRoom
	}
	return s.store.Forget(ctx, room, user)
}

// Member is one entry of GET /joined_members.
type Member struct {
	DisplayName *string `json:"display_name,omitempty"`
	AvatarURL   *string `json:"avatar_url,omitempty"`
}

// JoinedMembers lists the joined members and their profiles (GET
// /rooms/{roomId}/joined_members); the requester must be joined, or the
// room world readable.
func (s *Service) JoinedMembers(ctx context.Context, user id.UserID, room id.RoomID) (map[id.UserID]Member, error) {
	st, err := s.readableState(ctx, user, room)
	if err != nil {
		return nil, err
	}
	out := map[id.UserID]Member{}
	for k, ev := range st {
		if k.Type != auth.TypeMember || ev.Membership() != "join" {
			continue
		}
		m, err := auth.ParseMember(ev.Content())
		var mm Member
		if err == nil {
			if m.DisplayName != "" {
				mm.DisplayName = &m.DisplayName
			}
			if m.AvatarURL != "" {
				mm.AvatarURL = &m.AvatarURL
			}
		}
		out[id.UserID(k.StateKey)] = mm
	}
	return out, nil
}

// MembersQuery is GET /rooms/{roomId}/members' parameters.
type MembersQuery struct {
	// At is a /messages or /sync token; "" means now.
	At            string
	Membership    string
	NotMembership string
}

// Members returns the member events the user may see (GET
// /rooms/{roomId}/members), at a position when asked.
func (s *Service) Members(ctx context.Context, user id.UserID, room id.RoomID, q MembersQuery) ([]*StoredEvent, error) {
	st, err := s.readableState(ctx, user, room)
	if err != nil {
		return nil, err
	}
	if q.At != "" {
		at, err := s.position(ctx, room, q.At)
		if err != nil {
			return nil, err
		}
		// A former member sees no further than their own departure.
		if st.Membership(string(user)) != "join" {
			if vis, err := s.loadVisibility(ctx, room, user, 1<<62); err == nil && !vis.worldReadable() && len(vis.mine) > 0 {
				at = min(at, vis.mine[len(vis.mine)-1].Seq)
			}
		}
		if st, err = s.store.StateBefore(ctx, room, at+1); err != nil {
			return nil, err
		}
	}
	var out []*StoredEvent
	for k, ev := range st {
		if k.Type != auth.TypeMember {
			continue
		}
		m := ev.Membership()
		if (q.Membership != "" && m != q.Membership) || (q.NotMembership != "" && m == q.NotMembership) {
			continue
		}
		out = append(out, &StoredEvent{Event: ev, RoomID: room})
	}
	return out, nil
}

// JoinAsGuest is Join for a guest account: only rooms whose
// m.room.guest_access is can_join admit guests (client-server API, "Guest
// access").
func (s *Service) JoinAsGuest(ctx context.Context, user id.UserID, room id.RoomID, reason string) (id.RoomID, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return "", err
	}
	ga := h.State.Get("m.room.guest_access", "")
	var c struct {
		GuestAccess string `json:"guest_access"`
	}
	if ga != nil {
		_ = json.Unmarshal(ga.Content(), &c)
	}
	if c.GuestAccess != "can_join" {
		return "", mxerr.GuestAccessForbidden.Msg("guests may not join this room")
	}
	return s.Join(ctx, user, room, reason)
}
