package fedclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/id"
)

// TestEventReadCalls checks what each typed call sends (method, escaped
// path and query, body) and how it reads the answer.
func TestEventReadCalls(t *testing.T) {
	ca := fedtest.NewCA(t)
	type seen struct{ method, uri, body string }
	var got seen
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.RequestURI, string(b)}
		switch r.URL.Path {
		case "/_matrix/federation/v1/event/$ev/1":
			_, _ = w.Write([]byte(`{"origin":"hs2.test","origin_server_ts":1,"pdus":[{"type":"x"}]}`))
		case "/_matrix/federation/v1/event/$two":
			_, _ = w.Write([]byte(`{"origin":"hs2.test","origin_server_ts":1,"pdus":[{},{}]}`))
		case "/_matrix/federation/v1/state/!r:hs2.test":
			_, _ = w.Write([]byte(`{"pdus":[{"a":1}],"auth_chain":[{"b":2},{"c":3}]}`))
		case "/_matrix/federation/v1/state_ids/!r:hs2.test":
			_, _ = w.Write([]byte(`{"pdu_ids":["$a"],"auth_chain_ids":["$b","$c"]}`))
		case "/_matrix/federation/v1/event_auth/!r:hs2.test/$ev/1":
			_, _ = w.Write([]byte(`{"auth_chain":[{"b":2}]}`))
		case "/_matrix/federation/v1/backfill/!r:hs2.test":
			_, _ = w.Write([]byte(`{"origin":"hs2.test","origin_server_ts":5,"pdus":[{"x":1},{"x":2}]}`))
		case "/_matrix/federation/v1/get_missing_events/!r:hs2.test":
			_, _ = w.Write([]byte(`{"events":[{"m":1}]}`))
		case "/_matrix/federation/v1/timestamp_to_event/!r:hs2.test":
			_, _ = w.Write([]byte(`{"event_id":"$near","origin_server_ts":42}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND"}`))
		}
	}), "hs2.test")
	c, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	ctx := context.Background()
	const dest, room = id.ServerName("hs2.test"), id.RoomID("!r:hs2.test")

	pdu, err := c.GetEvent(ctx, dest, "$ev/1")
	if err != nil || string(pdu) != `{"type":"x"}` || got.uri != "/_matrix/federation/v1/event/$ev%2F1" {
		t.Errorf("GetEvent: %s, %v, sent %+v", pdu, err, got)
	}
	if _, err := c.GetEvent(ctx, dest, "$two"); err == nil {
		t.Error("GetEvent accepted an answer of two PDUs")
	}
	st, err := c.GetState(ctx, dest, room, "$e v")
	if err != nil || len(st.PDUs) != 1 || len(st.AuthChain) != 2 || got.uri != "/_matrix/federation/v1/state/%21r:hs2.test?event_id=%24e+v" {
		t.Errorf("GetState: %+v, %v, sent %+v", st, err, got)
	}
	ids, err := c.GetStateIDs(ctx, dest, room, "$e")
	if err != nil || len(ids.PDUIDs) != 1 || len(ids.AuthChainIDs) != 2 || ids.AuthChainIDs[1] != "$c" {
		t.Errorf("GetStateIDs: %+v, %v", ids, err)
	}
	chain, err := c.EventAuth(ctx, dest, room, "$ev/1")
	if err != nil || len(chain) != 1 || got.uri != "/_matrix/federation/v1/event_auth/%21r:hs2.test/$ev%2F1" {
		t.Errorf("EventAuth: %d, %v, sent %+v", len(chain), err, got)
	}
	txn, err := c.Backfill(ctx, dest, room, []id.EventID{"$a", "$b"}, 7)
	if err != nil || len(txn.PDUs) != 2 || txn.Origin != dest || got.uri != "/_matrix/federation/v1/backfill/%21r:hs2.test?limit=7&v=%24a&v=%24b" {
		t.Errorf("Backfill: %+v, %v, sent %+v", txn, err, got)
	}
	evs, err := c.GetMissingEvents(ctx, dest, room, MissingEventsRequest{LatestEvents: []id.EventID{"$l"}, Limit: 5, MinDepth: 3})
	if err != nil || len(evs) != 1 || got.method != http.MethodPost {
		t.Errorf("GetMissingEvents: %d, %v, sent %+v", len(evs), err, got)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || string(body["earliest_events"]) != `[]` ||
		string(body["latest_events"]) != `["$l"]` || string(body["limit"]) != `5` || string(body["min_depth"]) != `3` {
		t.Errorf("get_missing_events body %s", got.body)
	}
	ts, err := c.TimestampToEvent(ctx, dest, room, 1234, 'b')
	if err != nil || ts.EventID != "$near" || ts.OriginServerTS != 42 || got.uri != "/_matrix/federation/v1/timestamp_to_event/%21r:hs2.test?ts=1234&dir=b" {
		t.Errorf("TimestampToEvent: %+v, %v, sent %+v", ts, err, got)
	}
	if _, err := c.GetStateIDs(ctx, dest, "!unknown:hs2.test", "$e"); StatusOf(err) != http.StatusNotFound {
		t.Errorf("not found: %v", err)
	}
}
