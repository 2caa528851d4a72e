package keyring

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// TestNotaryHonoursMinimumValidUntil: as a notary, Parley serves a stored
// key response while it is valid as long as the query asks
// (minimum_valid_until_ts, now when absent) without asking the server
// again; once it is not, it fetches the server's keys anew; and when the
// server is down it still serves the newest response it holds, expired or
// not (server-server API, "Querying Keys Through Another Server").
func TestNotaryHonoursMinimumValidUntil(t *testing.T) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	c := &clock{t0}
	n := newNet()
	notary := n.add(t, "notary", c, nil)
	n.add(t, "hs2", c, nil) // its key document is valid for an hour
	query := func(minValid int64) int64 {
		t.Helper()
		res, err := notary.Query(ctx, map[id.ServerName]map[string]int64{"hs2": {"": minValid}})
		if err != nil || len(res) != 1 {
			t.Fatalf("Query = %d responses, %v; want one", len(res), err)
		}
		var doc struct {
			ValidUntilTS int64 `json:"valid_until_ts"`
		}
		if err := json.Unmarshal(res[0], &doc); err != nil {
			t.Fatal(err)
		}
		return doc.ValidUntilTS
	}
	fetches := func() int {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.calls["hs2"]
	}
	hour := time.Hour.Milliseconds()

	if got := query(0); got != t0.UnixMilli()+hour || fetches() != 1 {
		t.Fatalf("first query: valid until %d after %d fetches; want %d after 1", got, fetches(), t0.UnixMilli()+hour)
	}
	// A minimum the stored response meets: no fetch.
	c.now = t0.Add(10 * time.Minute)
	if got := query(t0.UnixMilli() + 50*time.Minute.Milliseconds()); got != t0.UnixMilli()+hour || fetches() != 1 {
		t.Errorf("a minimum within the stored validity: valid until %d after %d fetches; want the stored one, no fetch", got, fetches())
	}
	// A minimum beyond it: hs2 is asked again and its fresh document
	// (valid an hour from now) served.
	if got := query(t0.UnixMilli() + 2*hour); got != c.now.UnixMilli()+hour || fetches() != 2 {
		t.Errorf("a minimum beyond the stored validity: valid until %d after %d fetches; want %d after 2", got, fetches(), c.now.UnixMilli()+hour)
	}
	newest := c.now.UnixMilli() + hour
	// Expired (no minimum means now), with hs2 down: the notary tries it,
	// then serves the newest response it holds.
	n.down["hs2"] = true
	c.now = t0.Add(5 * time.Hour)
	if got := query(0); got != newest || fetches() != 3 {
		t.Errorf("hs2 down, its keys expired: valid until %d after %d fetches; want the newest held, %d, after 3", got, fetches(), newest)
	}
}
