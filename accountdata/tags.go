package accountdata

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// maxTagLen bounds a tag name (the spec sets none; 255 bytes is plenty).
const maxTagLen = 255

// Tags returns the room's tags (GET /user/{userId}/rooms/{roomId}/tags):
// the "tags" object of the room's m.tag account data, empty when none.
func (s *Service) Tags(ctx context.Context, user id.UserID, room id.RoomID) (map[string]json.RawMessage, error) {
	raw, err := s.store.AccountData(ctx, user, room, TypeTag)
	if errors.Is(err, ErrNotFound) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	var c struct {
		Tags map[string]json.RawMessage `json:"tags"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Tags == nil {
		c.Tags = map[string]json.RawMessage{}
	}
	return c.Tags, nil
}

// PutTag adds or replaces one tag; content is its object (with an
// optional numeric order).
func (s *Service) PutTag(ctx context.Context, user id.UserID, room id.RoomID, tag string, content json.RawMessage) error {
	if tag == "" || len(tag) > maxTagLen {
		return mxerr.InvalidParam.Msg("tag must be 1 to 255 bytes")
	}
	var body struct {
		Order *json.Number `json:"order"`
	}
	if err := json.Unmarshal(content, &body); err != nil {
		return mxerr.BadJSON.Msg("tag content must be an object with a numeric order")
	}
	tags, err := s.Tags(ctx, user, room)
	if err != nil {
		return err
	}
	tags[tag] = content
	return s.putTags(ctx, user, room, tags)
}

// DeleteTag removes one tag; removing an absent tag succeeds.
func (s *Service) DeleteTag(ctx context.Context, user id.UserID, room id.RoomID, tag string) error {
	tags, err := s.Tags(ctx, user, room)
	if err != nil {
		return err
	}
	if _, ok := tags[tag]; !ok {
		return nil
	}
	delete(tags, tag)
	return s.putTags(ctx, user, room, tags)
}

func (s *Service) putTags(ctx context.Context, user id.UserID, room id.RoomID, tags map[string]json.RawMessage) error {
	raw, err := json.Marshal(map[string]any{"tags": tags})
	if err != nil {
		return err
	}
	return s.put(ctx, user, room, TypeTag, raw)
}
