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

// Typed calls of the server-server API's event reads ("Backfilling and
// retrieving missing events", "Retrieving events", "Retrieving event
// authorisation information"). PDUs come back as raw JSON: the caller
// parses them for the room's version and verifies them.

// Transaction is the transaction object some reads answer with.
type Transaction struct {
	Origin         id.ServerName     `json:"origin"`
	OriginServerTS int64             `json:"origin_server_ts"`
	PDUs           []json.RawMessage `json:"pdus"`
}

// StateResponse is GET /state's answer.
type StateResponse struct {
	AuthChain []json.RawMessage `json:"auth_chain"`
	PDUs      []json.RawMessage `json:"pdus"`
}

// StateIDsResponse is GET /state_ids' answer.
type StateIDsResponse struct {
	AuthChainIDs []id.EventID `json:"auth_chain_ids"`
	PDUIDs       []id.EventID `json:"pdu_ids"`
}

// MissingEventsRequest is POST /get_missing_events' body.
type MissingEventsRequest struct {
	EarliestEvents []id.EventID `json:"earliest_events"`
	LatestEvents   []id.EventID `json:"latest_events"`
	Limit          int          `json:"limit,omitempty"`
	MinDepth       int64        `json:"min_depth,omitempty"`
}

// TimestampToEventResponse is GET /timestamp_to_event's answer.
type TimestampToEventResponse struct {
	EventID        id.EventID `json:"event_id"`
	OriginServerTS int64      `json:"origin_server_ts"`
}

const fedV1 = "/_matrix/federation/v1"

// GetEvent fetches one event (GET /_matrix/federation/v1/event/{eventId}).
func (c *Client) GetEvent(ctx context.Context, dest id.ServerName, eventID id.EventID) (json.RawMessage, error) {
	var txn Transaction
	if err := c.Do(ctx, dest, http.MethodGet, fedV1+"/event/"+url.PathEscape(string(eventID)), nil, &txn); err != nil {
		return nil, err
	}
	if len(txn.PDUs) != 1 {
		return nil, fmt.Errorf("event %s from %s: %d pdus in the answer, want 1", eventID, dest, len(txn.PDUs))
	}
	return txn.PDUs[0], nil
}

// GetState fetches the state before an event and its auth chain (GET
// /_matrix/federation/v1/state/{roomId}?event_id=).
func (c *Client) GetState(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (*StateResponse, error) {
	var out StateResponse
	path := fedV1 + "/state/" + url.PathEscape(string(room)) + "?event_id=" + url.QueryEscape(string(eventID))
	if err := c.Do(ctx, dest, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetStateIDs is GetState by event ids (GET
// /_matrix/federation/v1/state_ids/{roomId}?event_id=).
func (c *Client) GetStateIDs(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (*StateIDsResponse, error) {
	var out StateIDsResponse
	path := fedV1 + "/state_ids/" + url.PathEscape(string(room)) + "?event_id=" + url.QueryEscape(string(eventID))
	if err := c.Do(ctx, dest, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EventAuth fetches the auth chain of an event (GET
// /_matrix/federation/v1/event_auth/{roomId}/{eventId}).
func (c *Client) EventAuth(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) ([]json.RawMessage, error) {
	var out struct {
		AuthChain []json.RawMessage `json:"auth_chain"`
	}
	path := fedV1 + "/event_auth/" + url.PathEscape(string(room)) + "/" + url.PathEscape(string(eventID))
	if err := c.Do(ctx, dest, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.AuthChain, nil
}

// Backfill fetches up to limit events preceding (and including) from
// (GET /_matrix/federation/v1/backfill/{roomId}?v=…&limit=).
func (c *Client) Backfill(ctx context.Context, dest id.ServerName, room id.RoomID, from []id.EventID, limit int) (*Transaction, error) {
	q := url.Values{}
	for _, e := range from {
		q.Add("v", string(e))
	}
	q.Set("limit", strconv.Itoa(limit))
	var txn Transaction
	if err := c.Do(ctx, dest, http.MethodGet, fedV1+"/backfill/"+url.PathEscape(string(room))+"?"+q.Encode(), nil, &txn); err != nil {
		return nil, err
	}
	return &txn, nil
}

// GetMissingEvents asks for the events between req.EarliestEvents and
// req.LatestEvents (POST /_matrix/federation/v1/get_missing_events/{roomId}).
func (c *Client) GetMissingEvents(ctx context.Context, dest id.ServerName, room id.RoomID, req MissingEventsRequest) ([]json.RawMessage, error) {
	if req.EarliestEvents == nil {
		req.EarliestEvents = []id.EventID{}
	}
	if req.LatestEvents == nil {
		req.LatestEvents = []id.EventID{}
	}
	var out struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := c.Do(ctx, dest, http.MethodPost, fedV1+"/get_missing_events/"+url.PathEscape(string(room)), req, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// TimestampToEvent asks for the event closest to ts in dir ('f' or 'b')
// (GET /_matrix/federation/v1/timestamp_to_event/{roomId}).
func (c *Client) TimestampToEvent(ctx context.Context, dest id.ServerName, room id.RoomID, ts int64, dir byte) (*TimestampToEventResponse, error) {
	var out TimestampToEventResponse
	path := fmt.Sprintf("%s/timestamp_to_event/%s?ts=%d&dir=%c", fedV1, url.PathEscape(string(room)), ts, dir)
	if err := c.Do(ctx, dest, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
