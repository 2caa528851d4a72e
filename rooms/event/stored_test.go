package event

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// storedEquals fails unless ParseStored, given Parse's id, reads e's bytes
// into the same event: fields, reference hash and Ref, computed lazily.
func storedEquals(t testing.TB, v roomversion.Version, e *Event) {
	t.Helper()
	s, err := ParseStored(v, e.Raw(), e.EventID())
	if err != nil {
		t.Fatalf("%s: ParseStored of a parsed event: %v", v.ID, err)
	}
	if s.EventID() != e.EventID() || s.RoomID() != e.RoomID() || s.Type() != e.Type() || s.Sender() != e.Sender() ||
		s.Depth() != e.Depth() || s.OriginServerTS() != e.OriginServerTS() || s.Redacts() != e.Redacts() ||
		!bytes.Equal(s.Content(), e.Content()) || (s.StateKey() == nil) != (e.StateKey() == nil) {
		t.Fatalf("%s: ParseStored differs from Parse for %s", v.ID, e.EventID())
	}
	if s.ReferenceHash() != e.ReferenceHash() || s.Ref() != e.Ref() {
		t.Fatalf("%s: lazily computed reference hash of %s differs", v.ID, e.EventID())
	}
	if r, pr := s.Redacted(), e.Redacted(); r.EventID() != pr.EventID() || !bytes.Equal(r.Raw(), pr.Raw()) {
		t.Fatalf("%s: redacted forms differ", v.ID)
	}
}

func TestParseStoredMatchesParse(t *testing.T) {
	for _, v := range roomversion.All() {
		kr := newKeyring(t, "a.example")
		b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
		create, join := b.createRoom("@alice:a.example")
		msg := b.build("@alice:a.example", "m.room.message", nil, `{"body":"hi","msgtype":"m.text"}`, []*Event{join}, []*Event{create, join})
		for _, e := range []*Event{create, join, msg} {
			storedEquals(t, v, mustParse(t, v, e.Raw()))
		}
		if v.CreateEventDefinesRoomID {
			if got, want := RoomIDOfCreate(mustStored(t, v, create)), RoomIDOfCreate(create); got != want {
				t.Errorf("%s: room id of a stored create %s, want %s", v.ID, got, want)
			}
		}
	}
}

func mustStored(t testing.TB, v roomversion.Version, e *Event) *Event {
	t.Helper()
	s, err := ParseStored(v, e.Raw(), e.EventID())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseStoredRefusals(t *testing.T) {
	v := roomversion.All()[len(roomversion.All())-1]
	kr := newKeyring(t, "a.example")
	b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
	create, _ := b.createRoom("@alice:a.example")
	for _, c := range []struct {
		name string
		raw  []byte
		id   id.EventID
	}{
		{"not JSON", []byte(`{"type":`), "$x"},
		{"not an object", []byte(`[1]`), "$x"},
		{"no type", []byte(`{"room_id":"!r:a.example"}`), "$x"},
		{"no id given", create.Raw(), ""},
	} {
		if _, err := ParseStored(v, c.raw, c.id); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if _, err := ParseStored(roomversion.Version{}, create.Raw(), create.EventID()); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("unknown version: %v", err)
	}
}

// FuzzParseStored: whatever Parse accepts, ParseStored with Parse's id
// reads the same.
func FuzzParseStored(f *testing.F) {
	fuzzSeeds(f)
	all := roomversion.All()
	f.Fuzz(func(t *testing.T, data []byte, version uint8) {
		v := all[int(version)%len(all)]
		e, err := Parse(v, data)
		if err != nil {
			return
		}
		storedEquals(t, v, e)
	})
}
