package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

// ProfileSource gives the display name and avatar of a local user ("" when
// unset or unknown); the profiles service implements it.
type ProfileSource interface {
	MemberProfile(ctx context.Context, user id.UserID) (displayName, avatarURL string, err error)
}

// SetProfiles makes membership events of local users carry their profile;
// app calls it once, before serving.
func (s *Service) SetProfiles(p ProfileSource) { s.profiles = p }

// addProfile puts target's displayname and avatar_url into the content of
// a join, invite or knock of a local user, unless the content names them
// already (client-server API, "Events on Change of Profile Information":
// servers include them in the membership events of their own users). A
// profile that cannot be read leaves the event without it.
func (s *Service) addProfile(ctx context.Context, target id.UserID, content map[string]any) {
	switch content["membership"] {
	case "join", "invite", "knock":
	default:
		return
	}
	if s.profiles == nil || target.Server() != s.cfg.ServerName {
		return
	}
	_, hasName := content["displayname"]
	_, hasAvatar := content["avatar_url"]
	if hasName && hasAvatar {
		return
	}
	name, avatar, err := s.profiles.MemberProfile(ctx, target)
	if err != nil {
		s.logger.WarnContext(ctx, "membership event without profile",
			slog.String("user_id", string(target)), slog.String("error", err.Error()))
		return
	}
	if !hasName && name != "" {
		content["displayname"] = name
	}
	if !hasAvatar && avatar != "" {
		content["avatar_url"] = avatar
	}
}

// addProfilesToDrafts is addProfile for the membership drafts of a new
// room (createRoom, room upgrades).
func (s *Service) addProfilesToDrafts(ctx context.Context, drafts []draft) {
	for i, d := range drafts {
		if d.Type != auth.TypeMember || d.StateKey == nil {
			continue
		}
		var content map[string]any
		if json.Unmarshal(d.Content, &content) != nil {
			continue
		}
		s.addProfile(ctx, id.UserID(*d.StateKey), content)
		drafts[i].Content = mustJSON(content)
	}
}

// RefreshMemberProfile sends, in every room the user is joined to, a new
// join event with the user's current displayname and avatar_url (spec:
// "Events on Change of Profile Information"). The event goes through the
// normal send path, so the auth rules apply; a room that refuses it keeps
// the old event and the others are still updated. Rooms whose member event
// already matches are skipped.
func (s *Service) RefreshMemberProfile(ctx context.Context, user id.UserID) error {
	if s.profiles == nil {
		return nil
	}
	name, avatar, err := s.profiles.MemberProfile(ctx, user)
	if err != nil {
		return err
	}
	joined, err := s.store.RoomsOf(ctx, user, "join")
	if err != nil {
		return fmt.Errorf("rooms of %s: %w", user, err)
	}
	var errs []error
	for _, room := range joined {
		if err := s.refreshMember(ctx, user, room, name, avatar); err != nil {
			errs = append(errs, fmt.Errorf("room %s: %w", room, err))
		}
	}
	return errors.Join(errs...)
}

// refreshMember re-sends the user's join in one room with the given
// profile, keeping the rest of the current content (is_direct and the
// like) but not the reason or the restricted-join authoriser, which
// belonged to the original join.
func (s *Service) refreshMember(ctx context.Context, user id.UserID, room id.RoomID, name, avatar string) error {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return err
	}
	ev := h.State.Get(auth.TypeMember, string(user))
	if ev == nil || ev.Membership() != "join" {
		return nil
	}
	content := map[string]any{}
	if err := json.Unmarshal(ev.Content(), &content); err != nil {
		content = map[string]any{}
	}
	oldName, _ := content["displayname"].(string)
	oldAvatar, _ := content["avatar_url"].(string)
	if oldName == name && oldAvatar == avatar {
		return nil
	}
	delete(content, "reason")
	delete(content, "join_authorised_via_users_server")
	content["membership"] = "join"
	setOrDelete(content, "displayname", name)
	setOrDelete(content, "avatar_url", avatar)
	_, err = s.setMembership(ctx, user, room, user, content)
	return err
}

func setOrDelete(m map[string]any, key, value string) {
	if value == "" {
		delete(m, key)
		return
	}
	m[key] = value
}
