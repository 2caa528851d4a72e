package rooms

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// stateCarriedOver is the state an upgrade copies into the new room
// (client-server API, "Room upgrades", server behaviour step 2).
var stateCarriedOver = []string{
	auth.TypeJoinRules, typeHistoryVisibility, "m.room.guest_access", "m.room.name", "m.room.topic",
	"m.room.avatar", "m.room.encryption", auth.TypeServerACL, "m.room.pinned_events",
}

// Upgrade replaces a room with a new one of another version (POST
// /rooms/{roomId}/upgrade): a new room whose create event names its
// predecessor, the important state copied, the aliases and the directory
// entry moved, an m.room.tombstone in the old room and the old room's
// power levels raised so that only moderators may still speak or invite.
func (s *Service) Upgrade(ctx context.Context, user id.UserID, old id.RoomID, newVersion string, additionalCreators []string) (id.RoomID, error) {
	v, ok := roomversion.Lookup(roomversion.ID(newVersion))
	if !ok {
		return "", mxerr.UnsupportedRoomVersion.Msgf("room version %q is not supported", newVersion)
	}
	h, err := s.store.Head(ctx, old)
	if err != nil {
		return "", err
	}
	ok, err = s.mayChangeState(ctx, user, old, "m.room.tombstone")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", mxerr.Forbidden.Msg("you may not upgrade this room")
	}
	plan := &roomPlan{version: v, creator: user}
	// The create event: predecessor, the old room's type and federation
	// flag, and (v12) additional creators.
	oldCreate := map[string]any{}
	if c := h.State.Get(auth.TypeCreate, ""); c != nil {
		_ = json.Unmarshal(c.Content(), &oldCreate)
	}
	body := map[string]any{"room_version": string(v.ID), "predecessor": map[string]any{"room_id": string(old)}}
	for _, k := range []string{"type", "m.federate"} {
		if val, ok := oldCreate[k]; ok {
			body[k] = val
		}
	}
	if !v.V11Semantics {
		body["creator"] = string(user)
	}
	var creators []id.UserID
	if v.CreateEventDefinesRoomID {
		creators = append(creators, user)
		if len(additionalCreators) > 0 {
			body["additional_creators"] = additionalCreators
			for _, c := range additionalCreators {
				creators = append(creators, id.UserID(c))
			}
		}
	} else if plan.roomID, err = newRoomID(s.cfg.ServerName); err != nil {
		return "", err
	}
	plan.createBody = body
	state := func(typ string, content json.RawMessage) draft {
		return draft{Sender: user, Type: typ, StateKey: new(string), Content: content}
	}
	plan.drafts = append(plan.drafts, draft{Sender: user, Type: auth.TypeMember, StateKey: ptr(string(user)),
		Content: mustJSON(map[string]any{"membership": "join"})})
	plan.drafts = append(plan.drafts, state(auth.TypePowerLevels, upgradedPowerLevels(h, user, creators)))
	plan.aliasAt = len(plan.drafts)
	for _, typ := range stateCarriedOver {
		if ev := h.State.Get(typ, ""); ev != nil {
			plan.drafts = append(plan.drafts, state(typ, ev.Content()))
		}
	}
	newRoom, err := s.createFromPlan(ctx, plan)
	if err != nil {
		return "", err
	}
	// Aliases, the canonical alias and the directory entry follow the room.
	if err := s.store.MoveAliases(ctx, old, newRoom); err != nil {
		return "", err
	}
	if ca := h.State.Get("m.room.canonical_alias", ""); ca != nil {
		if _, err := s.send(ctx, newRoom, nil, state("m.room.canonical_alias", ca.Content())); err != nil {
			s.logger.WarnContext(ctx, "copy canonical alias to the upgraded room", "room_id", newRoom, "error", err.Error())
		}
	}
	if published, err := s.store.Published(ctx, old); err == nil && published {
		_ = s.store.SetPublished(ctx, old, false)
		_ = s.store.SetPublished(ctx, newRoom, true)
	}
	tomb := mustJSON(map[string]any{"body": "This room has been replaced", "replacement_room": string(newRoom)})
	if _, err := s.send(ctx, old, nil, state("m.room.tombstone", tomb)); err != nil {
		return "", err
	}
	if err := s.restrictOldRoom(ctx, user, old); err != nil {
		s.logger.WarnContext(ctx, "restrict the upgraded room", "room_id", old, "error", err.Error())
	}
	return newRoom, nil
}

// upgradedPowerLevels copies the old room's power levels, making sure the
// upgrading user keeps the power to set up the new room; creators of a
// version 12 room are not listed (they have unlimited power).
func upgradedPowerLevels(h *Head, user id.UserID, creators []id.UserID) json.RawMessage {
	pl := map[string]any{}
	if ev := h.State.Get(auth.TypePowerLevels, ""); ev != nil {
		_ = json.Unmarshal(ev.Content(), &pl)
	}
	users, _ := pl["users"].(map[string]any)
	if users == nil {
		users = map[string]any{}
	}
	if len(creators) > 0 {
		for _, c := range creators {
			delete(users, string(c))
		}
	} else if lvl, _ := users[string(user)].(float64); lvl < 100 {
		users[string(user)] = 100
	}
	pl["users"] = users
	return mustJSON(pl)
}

// restrictOldRoom raises events_default and invite in the old room to at
// least 50 (and above users_default), so that ordinary members stop
// talking there.
func (s *Service) restrictOldRoom(ctx context.Context, user id.UserID, old id.RoomID) error {
	h, err := s.store.Head(ctx, old)
	if err != nil {
		return err
	}
	pl := map[string]any{}
	if ev := h.State.Get(auth.TypePowerLevels, ""); ev != nil {
		_ = json.Unmarshal(ev.Content(), &pl)
	}
	ud, _ := pl["users_default"].(float64)
	restricted := max(50, ud+1)
	for _, k := range []string{"events_default", "invite"} {
		cur, _ := pl[k].(float64)
		pl[k] = max(cur, restricted)
	}
	_, err = s.send(ctx, old, nil, draft{Sender: user, Type: auth.TypePowerLevels, StateKey: new(string), Content: mustJSON(pl)})
	return err
}

func ptr[T any](v T) *T { return &v }
