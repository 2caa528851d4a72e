package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// GET /sync?use_state_after=true (spec v1.16): rooms carry state_after,
// the state at the end of the timeline, and no state; a value other than
// true or false is M_INVALID_PARAM.
func TestSyncUseStateAfter(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"preset": "private_chat"})

	bad := s.Do(t, http.MethodGet, v3+"/sync?use_state_after=yes", tok, nil)
	apptest.MustStatus(t, bad, http.StatusBadRequest)
	if bad.Errcode() != "M_INVALID_PARAM" {
		t.Errorf("use_state_after=yes: %s", bad.Raw)
	}

	get := func(since string) (string, map[string]json.RawMessage) {
		t.Helper()
		q := url.Values{"use_state_after": {"true"}, "timeout": {"0"}}
		if since != "" {
			q.Set("since", since)
		}
		res := s.Do(t, http.MethodGet, v3+"/sync?"+q.Encode(), tok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		var body struct {
			NextBatch string `json:"next_batch"`
			Rooms     struct {
				Join map[string]map[string]json.RawMessage `json:"join"`
			} `json:"rooms"`
		}
		if err := json.Unmarshal(res.Raw, &body); err != nil {
			t.Fatal(err)
		}
		return body.NextBatch, body.Rooms.Join[room]
	}
	type events struct {
		Events []struct {
			Type    string         `json:"type"`
			Content map[string]any `json:"content"`
		} `json:"events"`
	}
	since, jr := get("")
	if _, ok := jr["state"]; ok || jr["state_after"] == nil {
		t.Fatalf("initial sync: state %v, state_after %s: want state_after only", ok, jr["state_after"])
	}
	var after events
	if err := json.Unmarshal(jr["state_after"], &after); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range after.Events {
		seen[ev.Type] = true
	}
	if !seen["m.room.create"] || !seen["m.room.power_levels"] || !seen["m.room.member"] {
		t.Errorf("initial state_after lacks the room's state: %v", seen)
	}

	// A topic set in the timeline is in state_after too: clients apply
	// state_after only.
	res := s.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(room)+"/state/m.room.topic/", tok, obj{"topic": "new"})
	apptest.MustStatus(t, res, http.StatusOK)
	_, jr = get(since)
	after = events{}
	if err := json.Unmarshal(jr["state_after"], &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Events) != 1 || after.Events[0].Type != "m.room.topic" || after.Events[0].Content["topic"] != "new" {
		t.Errorf("incremental state_after %s, want the new topic only", jr["state_after"])
	}
	if _, ok := jr["state"]; ok {
		t.Error("incremental sync with use_state_after has state")
	}
}
