package federation

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// Fetcher implements rooms.RemoteFetcher, what the inbound PDU pipeline
// asks the sending server for when it lacks events (server-server API,
// "Retrieving missing events"), over the federation client.
type Fetcher struct {
	Client *fedclient.Client
}

var _ rooms.RemoteFetcher = Fetcher{}

// GetMissingEvents implements rooms.RemoteFetcher.
func (f Fetcher) GetMissingEvents(ctx context.Context, dest id.ServerName, room id.RoomID, earliest, latest []id.EventID, limit int, minDepth int64) ([]json.RawMessage, error) {
	return f.Client.GetMissingEvents(ctx, dest, room, fedclient.MissingEventsRequest{
		EarliestEvents: earliest, LatestEvents: latest, Limit: limit, MinDepth: minDepth,
	})
}

// GetEvent implements rooms.RemoteFetcher.
func (f Fetcher) GetEvent(ctx context.Context, dest id.ServerName, eventID id.EventID) (json.RawMessage, error) {
	return f.Client.GetEvent(ctx, dest, eventID)
}

// GetStateIDs implements rooms.RemoteFetcher.
func (f Fetcher) GetStateIDs(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []id.EventID, err error) {
	res, err := f.Client.GetStateIDs(ctx, dest, room, eventID)
	if err != nil {
		return nil, nil, err
	}
	return res.PDUIDs, res.AuthChainIDs, nil
}

// GetState implements rooms.RemoteFetcher.
func (f Fetcher) GetState(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) (state, authChain []json.RawMessage, err error) {
	res, err := f.Client.GetState(ctx, dest, room, eventID)
	if err != nil {
		return nil, nil, err
	}
	return res.PDUs, res.AuthChain, nil
}

// EventAuth implements rooms.RemoteFetcher.
func (f Fetcher) EventAuth(ctx context.Context, dest id.ServerName, room id.RoomID, eventID id.EventID) ([]json.RawMessage, error) {
	return f.Client.EventAuth(ctx, dest, room, eventID)
}
