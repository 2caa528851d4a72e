package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// Presets of POST /createRoom.
const (
	PresetPrivateChat        = "private_chat"
	PresetTrustedPrivateChat = "trusted_private_chat"
	PresetPublicChat         = "public_chat"
)

// StateInput is one entry of initial_state.
type StateInput struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// CreateRequest is the body of POST /createRoom.
type CreateRequest struct {
	Visibility                string          `json:"visibility"`
	RoomAliasName             string          `json:"room_alias_name"`
	Name                      *string         `json:"name"`
	Topic                     *string         `json:"topic"`
	Invite                    []string        `json:"invite"`
	RoomVersion               string          `json:"room_version"`
	CreationContent           json.RawMessage `json:"creation_content"`
	InitialState              []StateInput    `json:"initial_state"`
	Preset                    string          `json:"preset"`
	IsDirect                  bool            `json:"is_direct"`
	PowerLevelContentOverride json.RawMessage `json:"power_level_content_override"`
}

// CreateRoom creates a room with the events of POST /createRoom, in the
// spec's order (client-server API, "Creation"), in one transaction: the
// room exists completely or not at all.
func (s *Service) CreateRoom(ctx context.Context, creator id.UserID, req CreateRequest) (id.RoomID, error) {
	plan, err := s.planRoom(creator, req)
	if err != nil {
		return "", err
	}
	return s.createFromPlan(ctx, plan)
}

// createFromPlan reserves the alias, builds the create event, persists
// the room in one transaction and publishes it.
func (s *Service) createFromPlan(ctx context.Context, plan *roomPlan) (id.RoomID, error) {
	creator := plan.creator
	s.addProfilesToDrafts(ctx, plan.drafts)
	create, err := s.buildCreate(plan)
	if err != nil {
		return "", err
	}
	roomID := plan.roomID
	if plan.version.CreateEventDefinesRoomID {
		roomID = event.RoomIDOfCreate(create)
	}
	if plan.alias != "" {
		if err := s.store.CreateAlias(ctx, plan.alias, roomID, creator); err != nil {
			if errors.Is(err, ErrAliasExists) {
				return "", mxerr.RoomInUse.Msg("room alias already taken")
			}
			return "", err
		}
		plan.drafts = slices.Insert(plan.drafts, plan.aliasAt, draft{
			Sender: creator, Type: "m.room.canonical_alias", StateKey: new(string),
			Content: mustJSON(map[string]any{"alias": plan.alias}),
		})
	}
	builds := []BuildFunc{func(*Head) (*event.Event, error) { return create, nil }}
	for _, d := range plan.drafts {
		builds = append(builds, func(h *Head) (*event.Event, error) {
			// A request whose own parameters make one of its events fail
			// the auth rules is M_INVALID_ROOM_STATE (createRoom, 400).
			ev, err := s.buildEvent(h, d)
			if err != nil && errors.Is(err, mxerr.Forbidden) {
				return nil, mxerr.InvalidRoomState.Msgf("%s event: %s", d.Type, errorMessage(err))
			}
			return ev, err
		})
	}
	v := plan.version
	if _, err := s.persist(ctx, AppendRequest{RoomID: roomID, NewRoom: &v, Build: builds}); err != nil {
		if plan.alias != "" {
			if _, _, derr := s.store.DeleteAlias(ctx, plan.alias); derr != nil {
				s.logger.WarnContext(ctx, "drop alias of a failed room", "alias", plan.alias, "error", derr.Error())
			}
		}
		return "", err
	}
	if plan.publish {
		if err := s.store.SetPublished(ctx, roomID, true); err != nil {
			return "", err
		}
	}
	for _, d := range plan.remoteInvites {
		// The room exists: a remote server that refuses or cannot be
		// reached leaves it without that invite, which /invite can retry.
		if err := s.inviteThroughInvitee(ctx, roomID, id.UserID(*d.StateKey), d); err != nil {
			s.logger.WarnContext(ctx, "createRoom: invite a remote user", "room", roomID, "user", *d.StateKey, "error", err.Error())
		}
	}
	return roomID, nil
}

func errorMessage(err error) string {
	if m, ok := mxerr.As(err); ok {
		return m.Message
	}
	return err.Error()
}

// roomPlan is a createRoom request checked and turned into drafts.
type roomPlan struct {
	version    roomversion.Version
	roomID     id.RoomID // empty for version 12
	creator    id.UserID
	createBody map[string]any
	drafts     []draft
	// remoteInvites are the invites of other servers' users, sent after
	// the room is created.
	remoteInvites []draft
	aliasAt       int // where the canonical alias goes among drafts
	alias         id.RoomAlias
	publish       bool
}

func (s *Service) planRoom(creator id.UserID, req CreateRequest) (*roomPlan, error) {
	vid := roomversion.ID(req.RoomVersion)
	if vid == "" {
		vid = roomversion.Default
	}
	v, ok := roomversion.Lookup(vid)
	if !ok {
		return nil, mxerr.UnsupportedRoomVersion.Msgf("room version %q is not supported", req.RoomVersion)
	}
	p := &roomPlan{version: v, creator: creator}
	switch req.Visibility {
	case "", "private":
	case "public":
		p.publish = true
	default:
		return nil, mxerr.InvalidParam.Msg("visibility must be public or private")
	}
	preset := req.Preset
	if preset == "" {
		preset = PresetPrivateChat
		if p.publish {
			preset = PresetPublicChat
		}
	}
	if preset != PresetPrivateChat && preset != PresetTrustedPrivateChat && preset != PresetPublicChat {
		return nil, mxerr.InvalidParam.Msgf("unknown preset %q", preset)
	}
	invitees := make([]id.UserID, 0, len(req.Invite))
	for _, raw := range req.Invite {
		u, err := id.ParseUserID(raw)
		if err != nil {
			return nil, mxerr.InvalidParam.Msgf("invite: %q is not a user id", raw)
		}
		if u != creator && !slices.Contains(invitees, u) {
			invitees = append(invitees, u)
		}
	}
	if req.RoomAliasName != "" {
		alias, err := id.ParseRoomAlias("#" + req.RoomAliasName + ":" + string(s.cfg.ServerName))
		if err != nil {
			return nil, mxerr.InvalidParam.Msgf("room_alias_name %q is not a valid alias localpart", req.RoomAliasName)
		}
		p.alias = alias
	}

	// 1. m.room.create.
	body, err := objectOrEmpty(req.CreationContent, "creation_content")
	if err != nil {
		return nil, err
	}
	body["room_version"] = string(v.ID)
	if v.V11Semantics {
		delete(body, "creator")
	} else {
		body["creator"] = string(creator)
	}
	if v.CreateEventDefinesRoomID && preset == PresetTrustedPrivateChat {
		extra := []string{}
		if have, ok := body["additional_creators"].([]any); ok {
			for _, h := range have {
				if s, ok := h.(string); ok && !slices.Contains(extra, s) {
					extra = append(extra, s)
				}
			}
		}
		for _, u := range invitees {
			if !slices.Contains(extra, string(u)) {
				extra = append(extra, string(u))
			}
		}
		body["additional_creators"] = extra
	}
	p.createBody = body
	if !v.CreateEventDefinesRoomID {
		if p.roomID, err = newRoomID(s.cfg.ServerName); err != nil {
			return nil, err
		}
	}

	state := func(typ, key string, content any) draft {
		return draft{Sender: creator, Type: typ, StateKey: &key, Content: mustJSON(content)}
	}
	// 2. The creator joins.
	p.drafts = append(p.drafts, state(auth.TypeMember, string(creator), map[string]any{"membership": "join"}))
	// 3. Power levels.
	var basePL json.RawMessage
	for _, si := range req.InitialState {
		if si.Type == auth.TypePowerLevels && si.StateKey == "" {
			basePL = si.Content
		}
	}
	pl, err := s.powerLevels(v, creator, preset, invitees, basePL, req.PowerLevelContentOverride)
	if err != nil {
		return nil, err
	}
	p.drafts = append(p.drafts, draft{Sender: creator, Type: auth.TypePowerLevels, StateKey: new(string), Content: pl})
	// 4. The canonical alias goes here once the alias is reserved.
	p.aliasAt = len(p.drafts)
	// 5. The preset's state, unless initial_state sets the same key.
	overridden := func(typ string) bool {
		return slices.ContainsFunc(req.InitialState, func(si StateInput) bool { return si.Type == typ && si.StateKey == "" })
	}
	joinRule, guest := "invite", "can_join"
	if preset == PresetPublicChat {
		joinRule, guest = "public", "forbidden"
	}
	for _, e := range []struct {
		typ     string
		content map[string]any
	}{
		{auth.TypeJoinRules, map[string]any{"join_rule": joinRule}},
		{"m.room.history_visibility", map[string]any{"history_visibility": "shared"}},
		{"m.room.guest_access", map[string]any{"guest_access": guest}},
	} {
		if !overridden(e.typ) {
			p.drafts = append(p.drafts, state(e.typ, "", e.content))
		}
	}
	// 6. initial_state.
	for _, si := range req.InitialState {
		if si.Type == "" {
			return nil, mxerr.BadJSON.Msg("initial_state: every event needs a type")
		}
		if si.Type == auth.TypeCreate || si.Type == auth.TypeMember {
			// These come from creation_content, the creator and invite.
			return nil, mxerr.BadJSON.Msgf("initial_state may not set %s", si.Type)
		}
		if si.Type == auth.TypePowerLevels && si.StateKey == "" {
			continue // it replaced the default power levels (step 3)
		}
		if _, err := objectOrEmpty(si.Content, "initial_state content"); err != nil {
			return nil, err
		}
		if (p.alias != "") && si.Type == "m.room.canonical_alias" {
			continue
		}
		p.drafts = append(p.drafts, draft{Sender: creator, Type: si.Type, StateKey: &si.StateKey, Content: si.Content})
	}
	// 7. name and topic.
	if req.Name != nil {
		p.drafts = append(p.drafts, state("m.room.name", "", map[string]any{"name": *req.Name}))
	}
	if req.Topic != nil {
		p.drafts = append(p.drafts, state("m.room.topic", "", map[string]any{
			"topic":   *req.Topic,
			"m.topic": map[string]any{"m.text": []map[string]any{{"body": *req.Topic, "mimetype": "text/plain"}}},
		}))
	}
	// 8. Invites. A user of another server must sign their invite
	// (server-server API, "Inviting to a room"): those are sent once the
	// room exists, by createFromPlan.
	for _, u := range invitees {
		content := map[string]any{"membership": "invite"}
		if req.IsDirect {
			content["is_direct"] = true
		}
		if s.fed.set && u.Server() != s.cfg.ServerName {
			p.remoteInvites = append(p.remoteInvites, state(auth.TypeMember, string(u), content))
			continue
		}
		p.drafts = append(p.drafts, state(auth.TypeMember, string(u), content))
	}
	return p, nil
}

// powerLevels is the default m.room.power_levels content — or the one
// initial_state gives, which takes precedence over defaults — with the
// override applied on top (key by key, at the top level).
func (s *Service) powerLevels(v roomversion.Version, creator id.UserID, preset string, invitees []id.UserID, base, override json.RawMessage) (json.RawMessage, error) {
	users := map[string]any{}
	if !v.CreateEventDefinesRoomID {
		users[string(creator)] = 100
		if preset == PresetTrustedPrivateChat {
			for _, u := range invitees {
				users[string(u)] = 100
			}
		}
	}
	invite := 0
	if preset == PresetPublicChat {
		invite = 50
	}
	tombstone := 100
	if v.CreateEventDefinesRoomID {
		tombstone = 150 // must be above state_default from v12 (createRoom, step 3)
	}
	pl := map[string]any{
		"users":          users,
		"users_default":  0,
		"events_default": 0,
		"state_default":  50,
		"ban":            50,
		"kick":           50,
		"redact":         50,
		"invite":         invite,
		"events": map[string]any{
			"m.room.name":               50,
			"m.room.avatar":             50,
			"m.room.topic":              50,
			"m.room.canonical_alias":    50,
			"m.room.power_levels":       100,
			"m.room.history_visibility": 100,
			"m.room.tombstone":          tombstone,
			"m.room.server_acl":         100,
			"m.room.encryption":         100,
		},
		"notifications": map[string]any{"room": 50},
	}
	if base != nil {
		var err error
		if pl, err = objectOrEmpty(base, "initial_state power levels"); err != nil {
			return nil, err
		}
	}
	over, err := objectOrEmpty(override, "power_level_content_override")
	if err != nil {
		return nil, err
	}
	maps.Copy(pl, over)
	return mustJSON(pl), nil
}

func (s *Service) buildCreate(p *roomPlan) (*event.Event, error) {
	ev, err := event.Build(p.version, event.Proto{
		Sender: p.creator, Type: auth.TypeCreate, StateKey: new(string),
		Content: mustJSON(p.createBody), RoomID: p.roomID, Depth: 1, OriginServerTS: s.nowMS(),
	}, s.cfg.ServerName, s.cfg.Key)
	if err != nil {
		return nil, buildError(err)
	}
	if err := auth.Check(p.version, ev, State{}); err != nil {
		return nil, mxerr.BadJSON.Msgf("creation_content: %s", errorMessage(authError(err)))
	}
	return ev, nil
}

// objectOrEmpty decodes an optional JSON object parameter.
func objectOrEmpty(raw json.RawMessage, what string) (map[string]any, error) {
	out := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil || out == nil {
		return nil, mxerr.BadJSON.Msgf("%s must be a JSON object", what)
	}
	return out, nil
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("rooms: encode %T: %v", v, err))
	}
	return b
}

// newRoomID is "!" and 18 random bytes: room versions before 12 leave the
// opaque part to the server.
func newRoomID(server id.ServerName) (id.RoomID, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("room id: %w", err)
	}
	return id.RoomID("!" + signing.EncodeURLBase64(b) + ":" + string(server)), nil
}
