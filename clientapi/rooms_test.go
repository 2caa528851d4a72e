package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// roomPath is /_matrix/client/v3/rooms/{roomId} with the id escaped as
// clients escape it.
func roomPath(room string, rest ...string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + strings.Join(rest, "")
}

// mustCreateRoom creates a room and returns its id.
func mustCreateRoom(t *testing.T, s *apptest.Server, token string, body obj) string {
	t.Helper()
	if body == nil {
		body = obj{}
	}
	res := s.Do(t, http.MethodPost, v3+"/createRoom", token, body)
	apptest.MustStatus(t, res, http.StatusOK)
	room := res.String("room_id")
	if !strings.HasPrefix(room, "!") {
		t.Fatalf("room id %q", room)
	}
	return room
}

// mustSend sends a message and returns its event id.
func mustSend(t *testing.T, s *apptest.Server, token, room, txn, text string) string {
	t.Helper()
	res := s.Do(t, http.MethodPut, roomPath(room, "/send/m.room.message/", txn), token, obj{"msgtype": "m.text", "body": text})
	apptest.MustStatus(t, res, http.StatusOK)
	return res.String("event_id")
}

// stateOf returns the room's state events keyed by "type|state_key".
func stateOf(t *testing.T, s *apptest.Server, token, room string) map[string]map[string]any {
	t.Helper()
	res := s.Do(t, http.MethodGet, roomPath(room, "/state"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var list []map[string]any
	mustUnmarshal(t, res.Raw, &list)
	out := map[string]map[string]any{}
	for _, ev := range list {
		out[ev["type"].(string)+"|"+ev["state_key"].(string)] = ev
	}
	return out
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
