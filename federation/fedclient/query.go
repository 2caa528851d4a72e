package fedclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/parleyhq/parley/id"
)

// Typed calls of the server-server API's queries ("Querying for
// information", "Published Room Directory", "Device Management",
// "End-to-End Encryption").

// QueryProfile asks user's server for their profile (GET
// /_matrix/federation/v1/query/profile): the whole profile, or one field
// when field is set.
func (c *Client) QueryProfile(ctx context.Context, user id.UserID, field string) (map[string]json.RawMessage, error) {
	q := url.Values{"user_id": {string(user)}}
	if field != "" {
		q.Set("field", field)
	}
	var raw json.RawMessage
	if err := c.Do(ctx, user.Server(), http.MethodGet, fedV1+"/query/profile?"+q.Encode(), nil, &raw); err != nil {
		return nil, err
	}
	// A profile is at most 64 KiB (client-server API v1.16); a larger
	// answer is not one to pass on to our clients.
	if len(raw) > maxProfileBytes {
		return nil, fmt.Errorf("profile of %s: answer of %d bytes is larger than a profile may be", user, len(raw))
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("profile of %s: %w", user, err)
	}
	return out, nil
}

// maxProfileBytes bounds a profile answer: 64 KiB of profile, with room
// for whitespace.
const maxProfileBytes = 128 << 10

// DirectoryResponse is GET /query/directory's answer.
type DirectoryResponse struct {
	RoomID  id.RoomID       `json:"room_id"`
	Servers []id.ServerName `json:"servers"`
}

// QueryDirectory asks the alias's server which room it names (GET
// /_matrix/federation/v1/query/directory).
func (c *Client) QueryDirectory(ctx context.Context, alias id.RoomAlias) (*DirectoryResponse, error) {
	var out DirectoryResponse
	q := url.Values{"room_alias": {string(alias)}}
	if err := c.Do(ctx, alias.Server(), http.MethodGet, fedV1+"/query/directory?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PublicRoomsFilter is the filter of POST /publicRooms.
type PublicRoomsFilter struct {
	GenericSearchTerm string    `json:"generic_search_term,omitempty"`
	RoomTypes         []*string `json:"room_types,omitempty"`
}

// PublicRoomsRequest asks for a page of a server's room directory.
type PublicRoomsRequest struct {
	Limit  int                `json:"limit,omitempty"`
	Since  string             `json:"since,omitempty"`
	Filter *PublicRoomsFilter `json:"filter,omitempty"`
}

// PublicRooms reads a page of dest's published room directory into out:
// GET /_matrix/federation/v1/publicRooms, or POST when req has a filter.
func (c *Client) PublicRooms(ctx context.Context, dest id.ServerName, req PublicRoomsRequest, out any) error {
	if req.Filter != nil {
		return c.Do(ctx, dest, http.MethodPost, fedV1+"/publicRooms", req, out)
	}
	q := url.Values{}
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	if req.Since != "" {
		q.Set("since", req.Since)
	}
	path := fedV1 + "/publicRooms"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.Do(ctx, dest, http.MethodGet, path, nil, out)
}

// UserDevices asks user's server for their devices (GET
// /_matrix/federation/v1/user/devices/{userId}); the answer as sent.
func (c *Client) UserDevices(ctx context.Context, user id.UserID) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.Do(ctx, user.Server(), http.MethodGet, fedV1+"/user/devices/"+url.PathEscape(string(user)), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryKeys is POST /_matrix/federation/v1/user/keys/query: body and
// answer as sent.
func (c *Client) QueryKeys(ctx context.Context, dest id.ServerName, body json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.Do(ctx, dest, http.MethodPost, fedV1+"/user/keys/query", body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ClaimKeys is POST /_matrix/federation/v1/user/keys/claim: body and
// answer as sent.
func (c *Client) ClaimKeys(ctx context.Context, dest id.ServerName, body json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.Do(ctx, dest, http.MethodPost, fedV1+"/user/keys/claim", body, &out); err != nil {
		return nil, err
	}
	return out, nil
}
