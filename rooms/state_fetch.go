package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parleyhq/parley/id"
)

// fetchStateThreshold: more unknown events than this in the state at an
// event are fetched with one /state request instead of one /event each.
const fetchStateThreshold = 20

// errStateNotFetched marks a fetchStateEvents error of the remote server's
// (a store error is returned as it is).
var errStateNotFetched = errors.New("not fetched")

// fetchStateEvents asks server for the state before event at (/state_ids)
// and fetches what room's store lacks of it and its auth chain: one /event
// each, or one /state when more than fetchStateThreshold are missing; with
// withAt, event at too when it is not held. It returns the ids of the
// state and the fetched events, neither checked nor stored.
func (in *Inbound) fetchStateEvents(ctx context.Context, server id.ServerName, room id.RoomID, at id.EventID, withAt bool) ([]id.EventID, []json.RawMessage, error) {
	stateIDs, chainIDs, err := in.deps.Fetcher.GetStateIDs(ctx, server, room, at)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the state ids at %s: %v", errStateNotFetched, at, err)
	}
	all := append(slices.Clone(stateIDs), chainIDs...)
	if withAt {
		all = append(all, at)
	}
	known, need, err := in.unknownAmong(ctx, room, all)
	if err != nil {
		return nil, nil, err
	}
	var raws []json.RawMessage
	if len(need) <= fetchStateThreshold {
		for _, eid := range need {
			raw, err := in.deps.Fetcher.GetEvent(ctx, server, eid)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: event %s: %v", errStateNotFetched, eid, err)
			}
			raws = append(raws, raw)
		}
		return stateIDs, raws, nil
	}
	st, chain, err := in.deps.Fetcher.GetState(ctx, server, room, at)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the state at %s: %v", errStateNotFetched, at, err)
	}
	raws = append(st, chain...)
	if withAt && known[at] == nil {
		raw, err := in.deps.Fetcher.GetEvent(ctx, server, at)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: event %s: %v", errStateNotFetched, at, err)
		}
		raws = append(raws, raw)
	}
	return stateIDs, raws, nil
}
