package rooms

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// fedTestService is a service of server "us.test" with no store: enough
// for the handshake helpers that read none.
func fedTestService(t testing.TB) (*Service, signing.Key) {
	t.Helper()
	k, err := signing.Generate("ed25519:t")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{ServerName: "us.test", Key: k}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return s, k
}

func lookupOf(keys map[id.ServerName]signing.Key) event.KeyLookup {
	return func(_ context.Context, server id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
		if k, ok := keys[server]; ok && k.ID() == keyID {
			return k.Public(), nil
		}
		return nil, errors.New("unknown key")
	}
}

// fakeID is a well-formed event id of room versions 4 and later.
const fakeID = "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// roomFor is a room id of v's grammar.
func roomFor(v roomversion.Version) id.RoomID {
	if v.CreateEventDefinesRoomID {
		return "!BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	}
	return "!r:them.test"
}

// template is a make_join-style template for user in room.
func template(v roomversion.Version, room id.RoomID, user id.UserID, typ, membership string) json.RawMessage {
	prev := `["` + fakeID + `"]`
	if v.EventFormat == roomversion.FormatV1 {
		prev = `[["$prev:them.test",{"sha256":"abc"}]]`
	}
	return json.RawMessage(`{"room_id":"` + string(room) + `","type":"` + typ + `","sender":"` + string(user) +
		`","state_key":"` + string(user) + `","content":{"membership":"` + membership + `"},` +
		`"prev_events":` + prev + `,"auth_events":` + prev + `,"depth":7,"origin":"them.test","origin_server_ts":1,"hashes":{"sha256":"x"}}`)
}

func TestFillTemplate(t *testing.T) {
	s, k := fedTestService(t)
	const room, user = id.RoomID("!r:them.test"), id.UserID("@alice:us.test")
	for _, vid := range []roomversion.ID{"1", "10", "11", "12"} {
		v := roomversion.MustLookup(vid)
		room := roomFor(v)
		t.Run("room version "+string(vid), func(t *testing.T) {
			ev, err := s.fillTemplate(context.Background(), &Template{Version: vid, Event: template(v, room, user, "m.room.member", "join")}, room, user, "join", "hello")
			if err != nil {
				t.Fatal(err)
			}
			if err := event.Verify(context.Background(), ev, lookupOf(map[id.ServerName]signing.Key{"us.test": k})); err != nil {
				t.Fatalf("our signature does not verify: %v", err)
			}
			if ev.Sender() != user || *ev.StateKey() != string(user) || ev.Membership() != "join" || ev.Depth() != 7 {
				t.Errorf("event %s", ev.Raw())
			}
			if reason, _ := ev.ContentValue().GetString("reason"); reason != "hello" {
				t.Errorf("reason = %q", reason)
			}
			if ev.OriginServerTS() == 1 {
				t.Errorf("origin_server_ts was not replaced")
			}
			if v.EventFormat == roomversion.FormatV1 && !strings.HasSuffix(string(ev.EventID()), ":us.test") {
				t.Errorf("room v1 event id %s is not ours", ev.EventID())
			}
		})
	}
	v := roomversion.MustLookup("10")
	t.Run("restricted join keeps the authorising user", func(t *testing.T) {
		tpl := strings.Replace(string(template(v, room, user, "m.room.member", "join")), `{"membership":"join"}`,
			`{"membership":"join","join_authorised_via_users_server":"@mod:them.test"}`, 1)
		ev, err := s.fillTemplate(context.Background(), &Template{Version: "10", Event: json.RawMessage(tpl)}, room, user, "join", "")
		if err != nil {
			t.Fatal(err)
		}
		if via, _ := ev.ContentValue().GetString("join_authorised_via_users_server"); via != "@mod:them.test" {
			t.Errorf("join_authorised_via_users_server was lost: %s", ev.Raw())
		}
	})
	cases := []struct {
		name, version string
		tpl           json.RawMessage
		code          string
	}{
		{"another room", "10", template(v, "!other:them.test", user, "m.room.member", "join"), "M_UNKNOWN"},
		{"another user", "10", template(v, room, "@bob:us.test", "m.room.member", "join"), "M_UNKNOWN"},
		{"not a member event", "10", template(v, room, user, "m.room.message", "join"), "M_UNKNOWN"},
		{"another membership", "10", template(v, room, user, "m.room.member", "leave"), "M_UNKNOWN"},
		{"not an object", "10", json.RawMessage(`[1]`), "M_UNKNOWN"},
		{"unknown room version", "99", template(v, room, user, "m.room.member", "join"), "M_INCOMPATIBLE_ROOM_VERSION"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.fillTemplate(context.Background(), &Template{Version: roomversion.ID(c.version), Event: c.tpl}, room, user, "join", "")
			if e, ok := mxerr.As(err); !ok || e.Code != c.code {
				t.Fatalf("error %v, want %s", err, c.code)
			}
		})
	}
}

// signedMember builds a member event of room signed by server.
func signedMember(t *testing.T, v roomversion.Version, k signing.Key, server id.ServerName, room id.RoomID, sender id.UserID, stateKey, membership string) *event.Event {
	t.Helper()
	ev, err := event.Build(v, event.Proto{Sender: sender, Type: "m.room.member", StateKey: &stateKey,
		Content: json.RawMessage(`{"membership":"` + membership + `"}`), RoomID: room,
		PrevEvents: event.Refs(fakeID), AuthEvents: event.Refs(fakeID), Depth: 3, OriginServerTS: 5}, server, k)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestParseDirectPDU(t *testing.T) {
	v := roomversion.MustLookup("10")
	k, _ := signing.Generate("ed25519:x")
	const room = id.RoomID("!r:us.test")
	good := signedMember(t, v, k, "them.test", room, "@bob:them.test", "@bob:them.test", "join")
	cases := []struct {
		name       string
		ev         *event.Event
		room       id.RoomID
		eventID    id.EventID
		origin     id.ServerName
		membership string
		code       string
	}{
		{"accepted", good, room, good.EventID(), "them.test", "join", ""},
		{"event id of the path", good, room, "$other", "them.test", "join", "M_INVALID_PARAM"},
		{"room of the path", good, "!other:us.test", good.EventID(), "them.test", "join", "M_INVALID_PARAM"},
		{"membership", good, room, good.EventID(), "them.test", "leave", "M_INVALID_PARAM"},
		{"origin's user", good, room, good.EventID(), "else.test", "join", "M_INVALID_PARAM"},
	}
	other := signedMember(t, v, k, "them.test", room, "@bob:them.test", "@carol:them.test", "join")
	cases = append(cases, struct {
		name       string
		ev         *event.Event
		room       id.RoomID
		eventID    id.EventID
		origin     id.ServerName
		membership string
		code       string
	}{"state_key is the sender", other, room, other.EventID(), "them.test", "join", "M_INVALID_PARAM"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseDirectPDU(v, c.ev.Raw(), c.room, c.eventID, c.origin, c.membership)
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if e, ok := mxerr.As(err); !ok || e.Code != c.code {
				t.Fatalf("error %v, want %s", err, c.code)
			}
		})
	}
	if _, err := parseDirectPDU(v, []byte(`{"type":`), room, good.EventID(), "them.test", "join"); !errors.Is(err, mxerr.BadJSON) {
		t.Errorf("truncated event: %v", err)
	}
}

func TestInviteRoomState(t *testing.T) {
	k, _ := signing.Generate("ed25519:x")
	v10, v12 := roomversion.MustLookup("10"), roomversion.MustLookup("12")
	const room = id.RoomID("!r:them.test")
	member := signedMember(t, v10, k, "them.test", room, "@bob:them.test", "@bob:them.test", "join")
	elsewhere := signedMember(t, v10, k, "them.test", "!x:them.test", "@bob:them.test", "@bob:them.test", "join")
	stripped := json.RawMessage(`{"type":"m.room.name","state_key":"","sender":"@bob:them.test","content":{"name":"N"}}`)

	out, err := inviteRoomState(v10, room, []json.RawMessage{member.Raw(), stripped})
	if err != nil || len(out) != 2 {
		t.Fatalf("v10 with a PDU and a stripped event: %d, %v", len(out), err)
	}
	obj, _ := canonicaljson.Parse(out[0], false)
	if typ, _ := obj.GetString("type"); typ != "m.room.member" || obj.Has("signatures") {
		t.Errorf("a PDU is not turned into a stripped event: %s", out[0])
	}
	if _, err := inviteRoomState(v10, room, []json.RawMessage{elsewhere.Raw()}); !errors.Is(err, mxerr.InvalidParam) {
		t.Errorf("an event of another room: %v", err)
	}
	if _, err := inviteRoomState(v12, room, []json.RawMessage{stripped}); !errors.Is(err, mxerr.InvalidParam) {
		t.Errorf("v12 with a stripped event: %v", err)
	}
	if _, err := inviteRoomState(v12, room, nil); !errors.Is(err, mxerr.InvalidParam) {
		t.Errorf("v12 without a create event: %v", err)
	}
}

func TestVersionOffered(t *testing.T) {
	v10 := roomversion.MustLookup("10")
	if err := versionOffered(v10, []roomversion.ID{"9", "10"}); err != nil {
		t.Error(err)
	}
	err := versionOffered(v10, nil)
	e, ok := mxerr.As(err)
	if !ok || e.Code != "M_INCOMPATIBLE_ROOM_VERSION" || e.Extra["room_version"] != "10" {
		t.Errorf("no ver (means [1]) for a v10 room: %v %v", err, e)
	}
}

// FuzzFillTemplate: whatever a resident server answers to make_join, the
// joining side never panics, and any event it signs is the membership it
// asked for, of its user, in its room.
func FuzzFillTemplate(f *testing.F) {
	v := roomversion.MustLookup("10")
	f.Add("10", []byte(template(v, "!r:them.test", "@alice:us.test", "m.room.member", "join")))
	f.Add("1", []byte(template(roomversion.MustLookup("1"), "!r:them.test", "@alice:us.test", "m.room.member", "join")))
	f.Add("10", []byte(`{"room_id":"!r:them.test","type":"m.room.member","sender":"@alice:us.test","state_key":"@alice:us.test","content":{"membership":"join"}}`))
	f.Add("12", []byte(`{}`))
	f.Add("10", []byte(`[`))
	s, _ := fedTestService(f)
	f.Fuzz(func(t *testing.T, version string, tpl []byte) {
		ev, err := s.fillTemplate(context.Background(), &Template{Version: roomversion.ID(version), Event: tpl},
			"!r:them.test", "@alice:us.test", "join", "")
		if err != nil {
			return
		}
		if ev.RoomID() != "!r:them.test" || ev.Sender() != "@alice:us.test" || ev.StateKey() == nil ||
			*ev.StateKey() != "@alice:us.test" || ev.Type() != "m.room.member" || ev.Membership() != "join" {
			t.Fatalf("signed a different event: %s", ev.Raw())
		}
	})
}
