package syncer

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// TestRenderCacheMatchesMarshal: an event rendered through the cache is,
// for every viewer and whichever viewer rendered it first, byte for byte
// what json.Marshal of its ClientEvent writes — each viewer with its own
// age (the clock moves between viewers) and only the sending device with
// the transaction id; prev_content as the read that asks carries it; a
// redacted event (rendered whole) too.
func TestRenderCacheMatchesMarshal(t *testing.T) {
	key, err := signing.Generate("ed25519:t")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := roomversion.Lookup("10")
	build := func(p event.Proto) *event.Event {
		t.Helper()
		p.RoomID, p.Depth, p.OriginServerTS = "!r:x", 3, 1_000
		ev, err := event.Build(v, p, "x", key)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	name := "@bob:x"
	msg := build(event.Proto{Sender: "@alice:x", Type: "m.room.message", Content: json.RawMessage(`{"body":"<b>hi & é\u2028</b>","msgtype":"m.text"}`)})
	member := build(event.Proto{Sender: "@bob:x", Type: "m.room.member", StateKey: &name, Content: json.RawMessage(`{"membership":"join","displayname":"Bob"}`)})
	redaction := build(event.Proto{Sender: "@alice:x", Type: "m.room.redaction", Redacts: msg.EventID(), Content: json.RawMessage(`{}`)})
	events := map[string]*rooms.StoredEvent{
		"message with a transaction id": {Event: msg, RoomID: "!r:x", TxnDevice: "PHONE", TxnID: "txn \"1\" <x>"},
		"state with prev_content":       {Event: member, RoomID: "!r:x", PrevContent: []byte(`{"membership":"invite"}`)},
		"state read without prev":       {Event: member, RoomID: "!r:x"},
		"redacted":                      {Event: msg, RoomID: "!r:x", Redaction: redaction},
	}
	viewers := []rooms.Viewer{{User: "@alice:x", Device: "PHONE"}, {User: "@alice:x", Device: "LAPTOP"}, {User: "@bob:x", Device: "B"}}

	now := time.UnixMilli(5_000)
	format := rooms.New(rooms.Config{ServerName: "x", Now: func() time.Time { return now }}, nil, nil, nil, slog.Default())
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}} {
		var c renderCache
		for _, kind := range []string{"message with a transaction id", "state with prev_content", "state read without prev", "redacted"} {
			se := events[kind]
			for _, i := range order {
				viewer := viewers[i]
				now = now.Add(7 * time.Millisecond)
				got, err := c.clientEvent(format, se, viewer)
				if err != nil {
					t.Fatal(err)
				}
				want, err := json.Marshal(syncEvent{ClientEvent: format.ClientEvent(se, viewer)})
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("%s for %s/%s (order %v):\n got %s\nwant %s", kind, viewer.User, viewer.Device, order, got, want)
				}
			}
		}
		if len(c.m) != 2 {
			t.Errorf("order %v: %d events cached, want 2 (the redacted one rendered whole)", order, len(c.m))
		}
		if _, ok := c.m[id.EventID(msg.EventID())]; !ok {
			t.Errorf("order %v: the message is not cached", order)
		}
	}
}
