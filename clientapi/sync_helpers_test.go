package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// syncEvent is an event as /sync returns it.
type syncEvent struct {
	EventID  string         `json:"event_id"`
	RoomID   string         `json:"room_id"`
	Type     string         `json:"type"`
	StateKey *string        `json:"state_key"`
	Sender   string         `json:"sender"`
	Content  map[string]any `json:"content"`
	Unsigned map[string]any `json:"unsigned"`
	// Signatures is only present in the federation format.
	Signatures map[string]any `json:"signatures"`
}

type syncTimeline struct {
	Events    []syncEvent `json:"events"`
	Limited   bool        `json:"limited"`
	PrevBatch string      `json:"prev_batch"`
}

type syncEvents struct {
	Events []syncEvent `json:"events"`
}

type syncJoined struct {
	Summary             map[string]any `json:"summary"`
	State               syncEvents     `json:"state"`
	Timeline            syncTimeline   `json:"timeline"`
	Ephemeral           *syncEvents    `json:"ephemeral"`
	AccountData         *syncEvents    `json:"account_data"`
	UnreadNotifications map[string]any `json:"unread_notifications"`
}

type syncBody struct {
	NextBatch string `json:"next_batch"`
	Rooms     struct {
		Join   map[string]syncJoined `json:"join"`
		Invite map[string]struct {
			InviteState syncEvents `json:"invite_state"`
		} `json:"invite"`
		Leave map[string]struct {
			State    syncEvents   `json:"state"`
			Timeline syncTimeline `json:"timeline"`
		} `json:"leave"`
		Knock map[string]any `json:"knock"`
	} `json:"rooms"`
}

// syncQuery builds the query string of a /sync request.
func syncQuery(since string, extra ...string) string {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return v3 + "/sync?" + q.Encode()
}

// mustSync runs /sync and decodes the answer.
func mustSync(t testing.TB, s *apptest.Server, token, since string, extra ...string) syncBody {
	t.Helper()
	res := s.Do(t, http.MethodGet, syncQuery(since, extra...), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var body syncBody
	if err := json.Unmarshal(res.Raw, &body); err != nil {
		t.Fatalf("decode sync %s: %v", res.Raw, err)
	}
	if body.NextBatch == "" {
		t.Fatalf("sync without next_batch: %s", res.Raw)
	}
	return body
}

// newRoom creates a room and returns its id.
func newRoom(t testing.TB, s *apptest.Server, token string, body obj) string {
	t.Helper()
	if body == nil {
		body = obj{}
	}
	res := s.Do(t, http.MethodPost, v3+"/createRoom", token, body)
	apptest.MustStatus(t, res, http.StatusOK)
	return res.String("room_id")
}

// sendText sends an m.text message and returns its event id.
func sendText(t testing.TB, s *apptest.Server, token, room, txn, text string) string {
	t.Helper()
	res := s.Do(t, http.MethodPut, v3+"/rooms/"+url.PathEscape(room)+"/send/m.room.message/"+txn, token,
		obj{"msgtype": "m.text", "body": text})
	apptest.MustStatus(t, res, http.StatusOK)
	return res.String("event_id")
}

// bodies lists the bodies of the m.room.message events.
func bodies(evs []syncEvent) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == "m.room.message" {
			b, _ := ev.Content["body"].(string)
			out = append(out, b)
		}
	}
	return out
}

// findState returns the state event of that type and key, nil if absent.
func findState(evs []syncEvent, typ, key string) *syncEvent {
	for i, ev := range evs {
		if ev.Type == typ && ev.StateKey != nil && *ev.StateKey == key {
			return &evs[i]
		}
	}
	return nil
}

func joinList(xs []string) string { return strings.Join(xs, ",") }
