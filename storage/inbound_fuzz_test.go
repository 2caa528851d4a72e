package storage_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
)

// FuzzReceivePDU feeds arbitrary bytes to the inbound pipeline as a PDU
// of a room this server holds (go test ./storage -run '^$' -fuzz
// FuzzReceivePDU): it must never panic, and what it accepts must be
// stored.
func FuzzReceivePDU(f *testing.F) {
	h := newFedHarness(f)
	room, _, bob, _ := h.publicRoom("11")
	hd := h.head(room)
	msg := h.remoteEvent(hd, bob, "m.room.message", nil, `{"body":"seed","msgtype":"m.text"}`, hd.Extremities, hd.State)
	f.Add(msg.Raw())
	f.Add([]byte(strings.Replace(string(msg.Raw()), `"seed"`, `"tampered"`, 1)))
	f.Add([]byte(`{"room_id":"` + string(room) + `"}`))
	f.Add([]byte(`{"room_id":"` + string(room) + `","type":"m.room.message","sender":"` + string(bob) + `","content":{},"prev_events":[],"auth_events":[],"depth":1,"origin_server_ts":1,"hashes":{"sha256":"x"},"signatures":{}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"room_id":12}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		eid, err := h.in.ReceivePDU(h.ctx, inRemote, raw)
		if err != nil {
			return
		}
		if eid == "" {
			t.Fatal("accepted without an event id")
		}
		if ev, perr := event.Parse(hd.Version, raw); perr == nil && ev.RoomID() == room {
			k, err := h.st.KnownEvents(h.ctx, room, []id.EventID{eid})
			if err != nil {
				t.Fatal(err)
			}
			if k[eid] == nil {
				t.Fatalf("accepted %s is not stored", eid)
			}
		}
	})
}
