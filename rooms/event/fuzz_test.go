package event

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// fuzzSeeds adds built events of every version, the spec's vectors and the
// format tests' events.
func fuzzSeeds(f *testing.F) {
	for i, v := range roomversion.All() {
		kr := newKeyring(f, "a.example")
		b := &builder{t: f, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
		create, join := b.createRoom("@alice:a.example")
		pl := b.build("@alice:a.example", "m.room.power_levels", strp(""), `{"users":{"@alice:a.example":100},"ban":50,"notifications":{"room":50}}`, []*Event{join}, []*Event{create, join})
		for _, e := range []*Event{create, join, pl} {
			f.Add(e.Raw(), uint8(i))
		}
	}
	for _, tc := range specEvents {
		f.Add([]byte(tc.want), uint8(3))
	}
}

func FuzzParseEvent(f *testing.F) {
	fuzzSeeds(f)
	all := roomversion.All()
	noKeys := func(context.Context, id.ServerName, string, int64) (ed25519.PublicKey, error) {
		return nil, errUnknownKey
	}
	f.Fuzz(func(t *testing.T, data []byte, version uint8) {
		v := all[int(version)%len(all)]
		e, err := Parse(v, data)
		if err != nil {
			return
		}
		again, err := Parse(v, canonicaljson.Encode(e.JSON()))
		if err != nil {
			t.Fatalf("canonical form of a valid event does not parse: %v", err)
		}
		if again.EventID() != e.EventID() || again.RoomID() != e.RoomID() || again.Sender() != e.Sender() ||
			again.Depth() != e.Depth() || again.Redacts() != e.Redacts() || !bytes.Equal(again.Content(), e.Content()) {
			t.Fatalf("re-serialising changed the event: %s vs %s", again.EventID(), e.EventID())
		}
		red := e.Redacted()
		if red.EventID() != e.EventID() {
			t.Fatalf("redaction changed the id: %s vs %s", red.EventID(), e.EventID())
		}
		if err := Verify(t.Context(), e, noKeys); err == nil {
			t.Fatal("verified without any key")
		} else if !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("without keys: %v", err)
		}
		_ = auth.SelectAuthEvents(v, e.Type(), e.StateKey(), e.Sender(), e.Content())
	})
}

func FuzzRedact(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte(`{"type":"m.room.member","content":{"membership":"join","third_party_invite":{"signed":{"a":1},"x":2}},"x":1}`), uint8(11))
	f.Add([]byte(`{"type":"m.room.create","content":7}`), uint8(0))
	all := roomversion.All()
	f.Fuzz(func(t *testing.T, data []byte, version uint8) {
		v := all[int(version)%len(all)]
		obj, err := canonicaljson.Parse(data, v.StrictCanonicalJSON)
		if err != nil {
			return
		}
		red := Redact(v.Redaction, obj)
		twice := Redact(v.Redaction, red)
		if !canonicaljson.Equal(red, twice) {
			t.Fatalf("not idempotent:\n%s\n%s", canonicaljson.Encode(red), canonicaljson.Encode(twice))
		}
		if ReferenceHash(v, obj) != ReferenceHash(v, red) {
			t.Fatal("redaction changed the reference hash")
		}
		if e, err := Parse(v, data); err == nil {
			r := e.Redacted()
			if r.EventID() != e.EventID() || !canonicaljson.Equal(r.JSON(), red) {
				t.Fatal("Event.Redacted differs from Redact")
			}
		}
	})
}
