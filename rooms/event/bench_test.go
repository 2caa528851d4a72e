package event

import (
	"testing"

	"github.com/parleyhq/parley/rooms/roomversion"
)

// benchMessage is a signed v10 message event as another server sends it.
func benchMessage(b *testing.B) (*Event, keyring) {
	b.Helper()
	v := roomversion.MustLookup("10")
	kr := newKeyring(b, "a.example")
	bl := &builder{t: b, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
	create, join := bl.createRoom("@alice:a.example")
	msg := bl.build("@alice:a.example", "m.room.message", nil,
		`{"msgtype":"m.text","body":"Hello, world! This is a message of typical length, with a mention of @bob:b.example.","m.mentions":{"user_ids":["@bob:b.example"]}}`,
		[]*Event{join}, []*Event{create, join})
	return msg, kr
}

// BenchmarkVerifyEvent parses a received event and checks its signature and
// content hash: the per-event cost of an inbound federation transaction.
func BenchmarkVerifyEvent(b *testing.B) {
	msg, kr := benchMessage(b)
	raw := msg.Raw()
	v := msg.Version()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		e, err := Parse(v, raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := Verify(b.Context(), e, kr.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventID is the reference hash (redact, encode, sha256) behind
// every v3+ event id.
func BenchmarkEventID(b *testing.B) {
	msg, _ := benchMessage(b)
	v, obj := msg.Version(), msg.JSON()
	b.ReportAllocs()
	for b.Loop() {
		h := ReferenceHash(v, obj)
		if eventIDFromHash(v.EventFormat, h) != msg.EventID() {
			b.Fatal("id changed")
		}
	}
}
