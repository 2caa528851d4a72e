package rooms

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// fillTemplate turns a resident server's make_join/make_leave/make_knock
// template into our signed event. The template must be the membership
// asked for (server-server API, make_join: "the sending server MUST
// verify" room_id, sender, state_key, type and content.membership); we set
// origin, origin_server_ts and, in room versions 1 and 2, a fresh event_id
// of ours, add the profile and reason to the content, and sign.
func (s *Service) fillTemplate(ctx context.Context, tpl *Template, room id.RoomID, user id.UserID, membership, reason string) (*event.Event, error) {
	v, ok := roomversion.Lookup(tpl.Version)
	if !ok {
		return nil, mxerr.IncompatibleRoomVersion.Msgf("this server does not support room version %q", tpl.Version).
			With("room_version", string(tpl.Version))
	}
	obj, err := canonicaljson.Parse(tpl.Event, v.StrictCanonicalJSON)
	if err != nil || obj.Kind() != canonicaljson.Object {
		return nil, errBadTemplate("the template is not a JSON object")
	}
	str := func(key string) string { s, _ := obj.GetString(key); return s }
	content, _ := obj.Get("content")
	got, _ := content.GetString("membership")
	switch {
	case str("room_id") != string(room):
		return nil, errBadTemplate("the template is for another room")
	case str("sender") != string(user) || str("state_key") != string(user):
		return nil, errBadTemplate("the template is for another user")
	case str("type") != auth.TypeMember:
		return nil, errBadTemplate("the template is not an m.room.member event")
	case got != membership:
		return nil, errBadTemplate("the template's membership is not " + membership)
	}
	extra := map[string]any{"membership": membership}
	if reason != "" {
		extra["reason"] = reason
	}
	s.addProfile(ctx, user, extra)
	for k, val := range extra {
		if !content.Has(k) {
			content = content.With(k, canonicaljson.StringValue(val.(string)))
		}
	}
	obj = obj.Without("hashes", "signatures", "unsigned").
		With("content", content).
		With("origin", canonicaljson.StringValue(string(s.cfg.ServerName))).
		With("origin_server_ts", canonicaljson.IntValue(s.nowMS()))
	if v.EventFormat == roomversion.FormatV1 {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("event id: %w", err)
		}
		obj = obj.With("event_id", canonicaljson.StringValue("$"+signing.EncodeURLBase64(b)+":"+string(s.cfg.ServerName)))
	} else {
		obj = obj.Without("event_id")
	}
	signed, err := event.HashAndSign(v, obj, s.cfg.ServerName, s.cfg.Key)
	if err != nil {
		return nil, err
	}
	ev, err := event.Parse(v, canonicaljson.Encode(signed))
	if err != nil {
		return nil, errBadTemplate(err.Error())
	}
	return ev, nil
}

// errBadTemplate is a resident server's template we must discard; the
// caller tries another server.
func errBadTemplate(why string) error {
	return mxerr.Unknown.WithStatus(502).Msg("malformed membership template from the resident server: " + why)
}
