package clientapi_test

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// A sync stream started with use_state_after carries state_after and no
// state in its batches, as /sync does.
func TestWebSocketSyncUseStateAfter(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"preset": "private_chat", "name": "before"})
	c := connectWS(t, s, tok)
	c.send(obj{"type": "sync", "id": "s1", "since": nil, "use_state_after": true})
	for {
		f := c.next()
		if f.Type != "sync" {
			continue
		}
		var body struct {
			Rooms struct {
				Join map[string]map[string]json.RawMessage `json:"join"`
			} `json:"rooms"`
		}
		if err := json.Unmarshal(f.Body, &body); err != nil {
			t.Fatal(err)
		}
		jr, ok := body.Rooms.Join[room]
		if !ok {
			t.Fatalf("the first batch lacks the room: %s", f.Body)
		}
		if _, ok := jr["state"]; ok {
			t.Errorf("state in a use_state_after batch: %s", f.Body)
		}
		var after struct {
			Events []struct {
				Type string `json:"type"`
			} `json:"events"`
		}
		if err := json.Unmarshal(jr["state_after"], &after); err != nil || len(after.Events) == 0 {
			t.Errorf("state_after %s (%v), want the room's state", jr["state_after"], err)
		}
		return
	}
}
