package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/auth"
)

func isErr(err, target error) bool { return errors.Is(err, target) }

// Visibility of a room in the directory (GET/PUT /directory/list/room/{roomId}).
func (s *Service) Visibility(ctx context.Context, room id.RoomID) (string, error) {
	published, err := s.store.Published(ctx, room)
	if err != nil {
		return "", err
	}
	if published {
		return "public", nil
	}
	return "private", nil
}

// SetVisibility publishes or unpublishes a room; the requester needs the
// power to change the room's canonical alias, as Synapse asks.
func (s *Service) SetVisibility(ctx context.Context, user id.UserID, room id.RoomID, visibility string) error {
	if visibility != "public" && visibility != "private" {
		return mxerr.InvalidParam.Msg("visibility must be public or private")
	}
	ok, err := s.mayChangeState(ctx, user, room, "m.room.canonical_alias")
	if err != nil {
		return err
	}
	if !ok {
		return mxerr.Forbidden.Msg("you may not change this room's visibility in the directory")
	}
	return s.store.SetPublished(ctx, room, visibility == "public")
}

// PublicRoom is one entry of /publicRooms (PublishedRoomsChunk).
type PublicRoom struct {
	RoomID           id.RoomID `json:"room_id"`
	NumJoinedMembers int       `json:"num_joined_members"`
	WorldReadable    bool      `json:"world_readable"`
	GuestCanJoin     bool      `json:"guest_can_join"`
	Name             string    `json:"name,omitempty"`
	Topic            string    `json:"topic,omitempty"`
	AvatarURL        string    `json:"avatar_url,omitempty"`
	CanonicalAlias   string    `json:"canonical_alias,omitempty"`
	JoinRule         string    `json:"join_rule,omitempty"`
	RoomType         string    `json:"room_type,omitempty"`
}

// PublicRoomsRequest is /publicRooms' parameters.
type PublicRoomsRequest struct {
	Limit      int
	Since      string
	SearchTerm string
	RoomTypes  []*string // nil entry: rooms without a type
	hasTypes   bool
}

// WithRoomTypes sets the room_types filter (present even when empty).
func (r *PublicRoomsRequest) WithRoomTypes(types []*string) {
	r.RoomTypes, r.hasTypes = types, true
}

// PublicRoomsBody is the body of POST /publicRooms, the same for clients
// and servers.
type PublicRoomsBody struct {
	Limit  int    `json:"limit"`
	Since  string `json:"since"`
	Filter *struct {
		GenericSearchTerm string    `json:"generic_search_term"`
		RoomTypes         []*string `json:"room_types"`
	} `json:"filter"`
}

// Request is the directory request the body asks for.
func (b PublicRoomsBody) Request() PublicRoomsRequest {
	req := PublicRoomsRequest{Limit: b.Limit, Since: b.Since}
	if f := b.Filter; f != nil {
		req.SearchTerm = f.GenericSearchTerm
		if f.RoomTypes != nil {
			req.WithRoomTypes(f.RoomTypes)
		}
	}
	return req
}

// PublicRooms is a page of the directory.
type PublicRooms struct {
	Chunk     []PublicRoom `json:"chunk"`
	NextBatch string       `json:"next_batch,omitempty"`
	Total     int          `json:"total_room_count_estimate"`
}

// PublicRoomsPage lists published rooms in room id order (a stable order,
// which v1.19 allows), "n"+room id as the next batch token.
func (s *Service) PublicRoomsPage(ctx context.Context, req PublicRoomsRequest) (*PublicRooms, error) {
	since := id.RoomID("")
	if req.Since != "" {
		rest, ok := strings.CutPrefix(req.Since, "n")
		if !ok {
			return nil, mxerr.InvalidParam.Msg("invalid since token")
		}
		since = id.RoomID(rest)
	}
	limit := req.Limit
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	out := &PublicRooms{Chunk: []PublicRoom{}}
	term := strings.ToLower(req.SearchTerm)
	for {
		ids, err := s.store.PublishedRooms(ctx, since, 100)
		if err != nil {
			return nil, err
		}
		for _, room := range ids {
			since = room
			pr, err := s.publicRoom(ctx, room)
			if err != nil {
				return nil, err
			}
			if !matchesDirectory(pr, term, req) {
				continue
			}
			if len(out.Chunk) == limit {
				out.NextBatch = "n" + string(out.Chunk[limit-1].RoomID)
				out.Total = len(out.Chunk) + 1
				return out, nil
			}
			out.Chunk = append(out.Chunk, pr)
		}
		if len(ids) < 100 {
			break
		}
	}
	out.Total = len(out.Chunk)
	return out, nil
}

func matchesDirectory(pr PublicRoom, term string, req PublicRoomsRequest) bool {
	if term != "" && !strings.Contains(strings.ToLower(pr.Name+" "+pr.Topic+" "+pr.CanonicalAlias), term) {
		return false
	}
	if req.hasTypes {
		for _, t := range req.RoomTypes {
			if (t == nil && pr.RoomType == "") || (t != nil && *t == pr.RoomType) {
				return true
			}
		}
		return false
	}
	return true
}

// publicRoom summarises a room from its current state.
func (s *Service) publicRoom(ctx context.Context, room id.RoomID) (PublicRoom, error) {
	h, err := s.store.Head(ctx, room)
	if err != nil {
		return PublicRoom{}, err
	}
	field := func(typ, key string) string {
		ev := h.State.Get(typ, "")
		if ev == nil {
			return ""
		}
		var m map[string]any
		_ = json.Unmarshal(ev.Content(), &m)
		v, _ := m[key].(string)
		return v
	}
	pr := PublicRoom{
		RoomID:         room,
		Name:           field("m.room.name", "name"),
		Topic:          field("m.room.topic", "topic"),
		AvatarURL:      field("m.room.avatar", "url"),
		CanonicalAlias: field("m.room.canonical_alias", "alias"),
		JoinRule:       field(auth.TypeJoinRules, "join_rule"),
		RoomType:       field(auth.TypeCreate, "type"),
		WorldReadable:  field(typeHistoryVisibility, "history_visibility") == "world_readable",
		GuestCanJoin:   field("m.room.guest_access", "guest_access") == "can_join",
	}
	for k, ev := range h.State {
		if k.Type == auth.TypeMember && ev.Membership() == "join" {
			pr.NumJoinedMembers++
		}
	}
	return pr, nil
}
