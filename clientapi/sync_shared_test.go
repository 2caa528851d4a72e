package clientapi_test

import (
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// TestSharedTimelineReadKeepsTransactionIDPerDevice: syncs of the same
// range share one read of the room's events (storage's timeline cache),
// but rendering stays per viewer — unsigned.transaction_id goes to the
// sending device only, whichever sync read the range first.
func TestSharedTimelineReadKeepsTransactionIDPerDevice(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	tok1, _ := mustLogin(t, s, "alice", pw, nil)
	tok2, _ := mustLogin(t, s, "alice", pw, nil)
	_, bobTok := s.Register(t, "bob", pw)
	room := mustCreateRoom(t, s, tok1, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)

	for i, order := range [][]string{{"other device", "bob", "sender"}, {"sender", "other device", "bob"}} {
		// One since token for all three: the same timeline range.
		since := mustSync(t, s, bobTok, "").NextBatch
		txn := []string{"first", "second"}[i]
		id := sendText(t, s, tok1, room, txn, "hello "+txn)
		toks := map[string]string{"sender": tok1, "other device": tok2, "bob": bobTok}
		for _, who := range order {
			body := mustSync(t, s, toks[who], since)
			evs := body.Rooms.Join[room].Timeline.Events
			if len(evs) != 1 || evs[0].EventID != id {
				t.Fatalf("%s's sync (%v) gave %+v, want the one new event %s", who, order, evs, id)
			}
			got := evs[0].Unsigned["transaction_id"]
			if want := map[bool]any{true: txn, false: nil}[who == "sender"]; got != want {
				t.Errorf("order %v: %s sees transaction_id %v, want %v", order, who, got, want)
			}
		}
	}
}
