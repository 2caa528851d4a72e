package syncer

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
)

type fixedReceipts []Receipt

func (f fixedReceipts) ReceiptsPos(context.Context) (int64, error) { return 9, nil }
func (f fixedReceipts) ReceiptsBetween(_ context.Context, rooms []id.RoomID, _, _ int64) ([]Receipt, error) {
	return f, nil
}

func TestReceiptSourceCoalescesAndHidesPrivate(t *testing.T) {
	r1, r2 := id.RoomID("!a:hs"), id.RoomID("!b:hs")
	src := ReceiptSource{Store: fixedReceipts{
		{Room: r1, User: "@bob:hs", Type: "m.read", EventID: "$1", TS: 1},
		{Room: r1, User: "@carol:hs", Type: "m.read", EventID: "$1", TS: 2, ThreadID: "main"},
		{Room: r1, User: "@carol:hs", Type: ReceiptTypePrivate, EventID: "$2", TS: 3},
		{Room: r1, User: "@alice:hs", Type: ReceiptTypePrivate, EventID: "$2", TS: 4},
		{Room: r2, User: "@carol:hs", Type: ReceiptTypePrivate, EventID: "$3", TS: 5},
	}}
	resp := newResponse()
	q := StreamQuery{User: "@alice:hs", Joined: []id.RoomID{r1, r2}, Pos: 9}
	if err := src.Fill(context.Background(), q, resp); err != nil {
		t.Fatal(err)
	}
	t.Run("one event per room", func(t *testing.T) {
		if n := len(resp.Rooms.Join[r1].Ephemeral.Events); n != 1 {
			t.Fatalf("%d events", n)
		}
	})
	t.Run("a room with only others' private receipts is left out", func(t *testing.T) {
		if _, ok := resp.Rooms.Join[r2]; ok {
			t.Fatal("room b present")
		}
	})
	t.Run("content", func(t *testing.T) {
		var ev struct {
			Content map[string]map[string]map[string]receiptData `json:"content"`
		}
		if err := json.Unmarshal(resp.Rooms.Join[r1].Ephemeral.Events[0], &ev); err != nil {
			t.Fatal(err)
		}
		c := ev.Content
		if len(c["$1"]["m.read"]) != 2 || c["$1"]["m.read"]["@carol:hs"].ThreadID != "main" {
			t.Errorf("$1: %+v", c["$1"])
		}
		if p := c["$2"][ReceiptTypePrivate]; len(p) != 1 || p["@alice:hs"].TS != 4 {
			t.Errorf("private receipts %+v, want only alice's own", p)
		}
	})
}
