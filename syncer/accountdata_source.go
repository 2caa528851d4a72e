package syncer

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/parleyhq/parley/id"
)

// AccountData is one account data entry: global when Room is "".
type AccountData struct {
	Room    id.RoomID
	Type    string
	Content json.RawMessage
}

// AccountDataReader is what the account data stream reads.
type AccountDataReader interface {
	AccountDataPos(ctx context.Context) (int64, error)
	// AccountDataBetween returns user's entries changed in (after, upTo].
	AccountDataBetween(ctx context.Context, user id.UserID, after, upTo int64) ([]AccountData, error)
}

// AccountDataSource is the account data stream (spec client-server-api
// "Client Config"): the top-level account_data section and each joined
// room's, with what changed in the range (everything on an initial sync).
type AccountDataSource struct{ Store AccountDataReader }

var _ CounterSource = AccountDataSource{}

// Stream implements StreamSource.
func (AccountDataSource) Stream() Stream { return StreamAccountData }

// CounterName implements CounterSource.
func (AccountDataSource) CounterName() string { return "account_data" }

// CurrentPos implements StreamSource.
func (s AccountDataSource) CurrentPos(ctx context.Context) (int64, error) {
	return s.Store.AccountDataPos(ctx)
}

// Fill implements StreamSource.
func (s AccountDataSource) Fill(ctx context.Context, q StreamQuery, resp *Response) error {
	since := q.Since
	if q.Initial {
		since = 0
	}
	gf, rf := q.Filter.AccountDataFilter(), q.Filter.RoomAccountDataFilter()
	if since >= q.Pos || (excludesAll(gf) && (rf == nil || excludesAll(&rf.EventFilter))) {
		// Nothing in the range, or nothing the client wants: no query (a
		// fan-out is hundreds of these syncs at once).
		return nil
	}
	entries, err := s.Store.AccountDataBetween(ctx, q.User, since, q.Pos)
	if err != nil {
		return err
	}
	for _, e := range entries {
		raw, err := json.Marshal(map[string]any{"type": e.Type, "content": e.Content})
		if err != nil {
			return err
		}
		if e.Room == "" {
			if gf.Matches(e.Type, q.User) {
				resp.AccountData.Events = append(resp.AccountData.Events, raw)
			}
			continue
		}
		if !slices.Contains(q.Joined, e.Room) || !rf.Matches(&Event{Type: e.Type, RoomID: e.Room, Sender: q.User}) {
			continue
		}
		jr := resp.Joined(e.Room)
		jr.AccountData.Events = append(jr.AccountData.Events, raw)
	}
	return nil
}

// excludesAll reports whether f matches no event at all ("types": []).
func excludesAll(f *EventFilter) bool {
	return f != nil && f.Types != nil && len(f.Types) == 0
}
