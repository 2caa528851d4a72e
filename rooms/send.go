package rooms

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
)

// BadAlias is the spec's M_BAD_ALIAS: an m.room.canonical_alias names an
// alias that does not point at the room (client-server API,
// "m.room.canonical_alias").
var BadAlias = &mxerr.Error{Code: "M_BAD_ALIAS", Status: http.StatusBadRequest, Message: "Bad alias"}

// Send sends a message event (PUT /rooms/{roomId}/send/{eventType}/{txnId}).
// A retry with the same transaction id from the same device returns the
// first attempt's event id and sends nothing.
func (s *Service) Send(ctx context.Context, v Viewer, room id.RoomID, eventType, txnID string, content json.RawMessage) (id.EventID, error) {
	if eventType == "" {
		return "", mxerr.InvalidParam.Msg("event type is empty")
	}
	if err := checkObject(content); err != nil {
		return "", err
	}
	txn := &TxnKey{User: v.User, Device: v.Device, TxnID: txnID}
	return s.send(ctx, room, txn, draft{Sender: v.User, Type: eventType, Content: content})
}

// SetState sends a state event (PUT /rooms/{roomId}/state/{eventType}/{stateKey}).
func (s *Service) SetState(ctx context.Context, sender id.UserID, room id.RoomID, eventType, stateKey string, content json.RawMessage) (id.EventID, error) {
	if eventType == "" {
		return "", mxerr.InvalidParam.Msg("event type is empty")
	}
	if err := checkObject(content); err != nil {
		return "", err
	}
	if err := s.checkStateContent(ctx, room, eventType, stateKey, content); err != nil {
		return "", err
	}
	return s.send(ctx, room, nil, draft{Sender: sender, Type: eventType, StateKey: &stateKey, Content: content})
}

// checkStateContent refuses state whose key or content the auth rules
// would misread, with M_BAD_JSON rather than a bare M_FORBIDDEN, and the
// canonical alias checks (client-server API, "m.room.canonical_alias": the
// aliases must exist and point at the room, else M_BAD_ALIAS).
func (s *Service) checkStateContent(ctx context.Context, room id.RoomID, eventType, stateKey string, content json.RawMessage) error {
	switch eventType {
	case auth.TypeMember:
		if _, err := id.ParseUserID(stateKey); err != nil {
			return mxerr.BadJSON.Msg("the state key of m.room.member must be a user id")
		}
		if _, err := auth.ParseMember(content); err != nil {
			return mxerr.BadJSON.Msgf("m.room.member content: %v", err)
		}
	case auth.TypePowerLevels, auth.TypeJoinRules, "m.room.history_visibility", "m.room.canonical_alias":
		if stateKey != "" {
			return mxerr.BadJSON.Msgf("%s takes an empty state key", eventType)
		}
	}
	switch eventType {
	case auth.TypePowerLevels:
		h, err := s.store.Head(ctx, room)
		if err != nil {
			return err
		}
		if _, err := auth.ParsePowerLevels(h.Version, content); err != nil {
			return mxerr.BadJSON.Msgf("m.room.power_levels content: %v", err)
		}
	case auth.TypeJoinRules:
		if _, err := auth.ParseJoinRules(content); err != nil {
			return mxerr.BadJSON.Msgf("m.room.join_rules content: %v", err)
		}
	case "m.room.history_visibility":
		var c struct {
			HV string `json:"history_visibility"`
		}
		_ = json.Unmarshal(content, &c)
		switch c.HV {
		case "world_readable", "shared", "invited", "joined":
		default:
			return mxerr.BadJSON.Msg("history_visibility must be world_readable, shared, invited or joined")
		}
	case "m.room.canonical_alias":
		return s.checkCanonicalAlias(ctx, room, content)
	}
	return nil
}

func (s *Service) checkCanonicalAlias(ctx context.Context, room id.RoomID, content json.RawMessage) error {
	var c struct {
		Alias      *string  `json:"alias"`
		AltAliases []string `json:"alt_aliases"`
	}
	if err := json.Unmarshal(content, &c); err != nil {
		return mxerr.BadJSON.Msg("m.room.canonical_alias: alias must be a string and alt_aliases a list of strings")
	}
	all := c.AltAliases
	if c.Alias != nil {
		all = append([]string{*c.Alias}, all...)
	}
	for _, raw := range all {
		a, err := id.ParseRoomAlias(raw)
		if err != nil {
			return mxerr.InvalidParam.Msgf("%q is not a room alias", raw)
		}
		if a.Server() != s.cfg.ServerName {
			// Remote aliases cannot be resolved without federation yet.
			continue
		}
		got, err := s.store.ResolveAlias(ctx, a)
		if err != nil || got != room {
			return BadAlias.Msgf("alias %s does not point at this room", a)
		}
	}
	return nil
}

func checkObject(content json.RawMessage) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(content, &obj); err != nil || obj == nil {
		return mxerr.BadJSON.Msg("content must be a JSON object")
	}
	return nil
}
