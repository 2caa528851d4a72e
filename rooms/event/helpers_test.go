package event

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

var errUnknownKey = errors.New("unknown key")

// keyring is a test key server: server → key id → key.
type keyring map[id.ServerName]map[string]signing.Key

func newKeyring(t testing.TB, servers ...id.ServerName) keyring {
	t.Helper()
	kr := keyring{}
	for _, s := range servers {
		k, err := signing.Generate("ed25519:a_" + string(s[0]))
		if err != nil {
			t.Fatal(err)
		}
		kr[s] = map[string]signing.Key{k.ID(): k}
	}
	return kr
}

func (kr keyring) key(server id.ServerName) signing.Key {
	for _, k := range kr[server] {
		return k
	}
	panic("no key for " + server)
}

func (kr keyring) lookup(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
	k, ok := kr[server][keyID]
	if !ok {
		return nil, errUnknownKey
	}
	return k.Public(), nil
}

// builder builds events of one room on one server.
type builder struct {
	t      testing.TB
	v      roomversion.Version
	server id.ServerName
	key    signing.Key
	room   id.RoomID
	ts     int64
}

func (b *builder) build(sender id.UserID, typ string, stateKey *string, content string, prev, authEvents []*Event) *Event {
	b.t.Helper()
	b.ts++
	var depth int64 = 1
	var prevRefs, authRefs []Ref
	for _, p := range prev {
		prevRefs = append(prevRefs, p.Ref())
		depth = max(depth, p.Depth()+1)
	}
	for _, a := range authEvents {
		authRefs = append(authRefs, a.Ref())
	}
	p := Proto{
		Sender: sender, Type: typ, StateKey: stateKey, Content: json.RawMessage(content),
		RoomID: b.room, PrevEvents: prevRefs, AuthEvents: authRefs, Depth: depth, OriginServerTS: b.ts,
	}
	e, err := Build(b.v, p, b.server, b.key)
	if err != nil {
		b.t.Fatalf("build %s: %v", typ, err)
	}
	return e
}

func strp(s string) *string { return &s }

// createRoom builds the create event and the creator's join, and sets
// b.room (derived from the create event in room version 12).
func (b *builder) createRoom(creator id.UserID) (create, join *Event) {
	b.t.Helper()
	if !b.v.CreateEventDefinesRoomID {
		b.room = id.RoomID("!room:" + string(b.server))
	}
	create = b.build(creator, "m.room.create", strp(""), `{"room_version":"`+string(b.v.ID)+`","creator":"`+string(creator)+`"}`, nil, nil)
	if b.v.CreateEventDefinesRoomID {
		b.room = RoomIDOfCreate(create)
	}
	var authEvents []*Event
	if !b.v.CreateEventDefinesRoomID {
		authEvents = []*Event{create}
	}
	join = b.build(creator, "m.room.member", strp(string(creator)), `{"membership":"join"}`, []*Event{create}, authEvents)
	return create, join
}

func mustParse(t testing.TB, v roomversion.Version, raw []byte) *Event {
	t.Helper()
	e, err := Parse(v, raw)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	return e
}

func mustValue(t testing.TB, s string) canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.ParseLenient([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reencode returns the event's JSON with f applied, for tampering.
func reencode(e *Event, f func(canonicaljson.Value) canonicaljson.Value) []byte {
	return canonicaljson.Encode(f(e.JSON()))
}
