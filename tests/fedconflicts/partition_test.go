package fedconflicts

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// timeline is the room's history on a's server (GET /messages backwards
// from the end), as message bodies, oldest first.
func (a account) bodies(t *testing.T, room string) []string {
	t.Helper()
	res := a.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?dir=b&limit=500", nil)
	if res.Status != http.StatusOK {
		return []string{fmt.Sprintf("status %d %s", res.Status, res.Raw)}
	}
	chunk, _ := res.Body["chunk"].([]any)
	var out []string
	for _, c := range chunk {
		ev, _ := c.(map[string]any)
		if ev["type"] != "m.room.message" {
			continue
		}
		content, _ := ev["content"].(map[string]any)
		out = append(out, fmt.Sprint(content["body"]))
	}
	slices.Reverse(out)
	return out
}

func TestAServerBackFromAnOutageGetsEveryEventInOrder(t *testing.T) {
	room, alice, bob, _ := joinedRoom(t, false)
	bob.srv.Stop(t)
	var want []string
	for i := range 80 {
		body := fmt.Sprintf("while you were away %d", i)
		alice.must(t, http.MethodPut, fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/gap%d", esc(room), i),
			map[string]any{"msgtype": "m.text", "body": body})
		want = append(want, body)
	}
	bob.srv.Restart(t)
	waitFor(t, "every message on hs2, in order", func() (bool, string) {
		got := bob.bodies(t, room)
		return slices.Equal(got, want), fmt.Sprintf("%d of %d: %v", len(got), len(want), got)
	})
	sameState(t, room, alice, bob)
}
