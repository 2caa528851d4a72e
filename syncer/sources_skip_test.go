package syncer

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/id"
)

type countingAccountData struct{ calls int }

func (c *countingAccountData) AccountDataPos(context.Context) (int64, error) { return 5, nil }
func (c *countingAccountData) AccountDataBetween(context.Context, id.UserID, int64, int64) ([]AccountData, error) {
	c.calls++
	return []AccountData{{Type: "m.direct", Content: []byte(`{}`)}}, nil
}

type countingReceipts struct{ calls int }

func (c *countingReceipts) ReceiptsPos(context.Context) (int64, error) { return 5, nil }
func (c *countingReceipts) ReceiptsBetween(context.Context, []id.RoomID, int64, int64) ([]Receipt, error) {
	c.calls++
	return nil, nil
}

// TestSourcesSkipEmptyRangesAndExcludedTypes: the account data and
// receipts streams make no query for an incremental sync whose range of
// theirs is empty, nor when the filter's types is [] — every member of a
// fan-out asked both on every sync.
func TestSourcesSkipEmptyRangesAndExcludedTypes(t *testing.T) {
	none := []string{}
	noTypes := &Filter{AccountData: &EventFilter{Types: none},
		Room: &RoomFilter{AccountData: &RoomEventFilter{EventFilter: EventFilter{Types: none}},
			Ephemeral: &RoomEventFilter{EventFilter: EventFilter{Types: none}}}}
	joined := []id.RoomID{"!r:hs"}
	for _, c := range []struct {
		name  string
		q     StreamQuery
		reads bool
	}{
		{"empty range", StreamQuery{User: "@a:hs", Joined: joined, Since: 5, Pos: 5}, false},
		{"types []", StreamQuery{User: "@a:hs", Joined: joined, Since: 1, Pos: 5, Filter: noTypes}, false},
		{"a range", StreamQuery{User: "@a:hs", Joined: joined, Since: 1, Pos: 5}, true},
		{"initial", StreamQuery{User: "@a:hs", Joined: joined, Since: 5, Pos: 5, Initial: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ad, rc := &countingAccountData{}, &countingReceipts{}
			resp := newResponse()
			if err := (AccountDataSource{Store: ad}).Fill(context.Background(), c.q, resp); err != nil {
				t.Fatal(err)
			}
			if err := (ReceiptSource{Store: rc}).Fill(context.Background(), c.q, resp); err != nil {
				t.Fatal(err)
			}
			if (ad.calls == 1) != c.reads || (rc.calls == 1) != c.reads {
				t.Errorf("account data read %d times, receipts %d, want reads=%v", ad.calls, rc.calls, c.reads)
			}
			if got := len(resp.AccountData.Events) == 1; got != c.reads {
				t.Errorf("account data events %d, want reads=%v", len(resp.AccountData.Events), c.reads)
			}
		})
	}
}
