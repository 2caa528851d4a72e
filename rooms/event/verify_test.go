package event

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

func TestVerifyRejects(t *testing.T) {
	v := roomversion.MustLookup("10")
	kr := newKeyring(t, "a.example", "b.example")
	b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
	create, join := b.createRoom("@alice:a.example")
	msg := b.build("@alice:a.example", "m.room.message", nil, `{"body":"hi"}`, []*Event{join}, []*Event{create, join})

	resign := func(e *Event, server id.ServerName, k signing.Key) *Event {
		t.Helper()
		obj, err := HashAndSign(v, e.JSON(), server, k)
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, v, canonicaljson.Encode(obj))
	}
	withContent := func(e *Event, content string) *Event {
		return mustParse(t, v, reencode(e, func(o canonicaljson.Value) canonicaljson.Value {
			return o.With("content", mustValue(t, content))
		}))
	}
	stranger, err := signing.Generate(kr.key("a.example").ID())
	if err != nil {
		t.Fatal(err)
	}
	// A restricted join by a b.example user authorised via a.example must
	// carry a.example's signature too.
	bob := &builder{t: t, v: v, server: "b.example", key: kr.key("b.example"), room: b.room, ts: 5}
	viaJoin := bob.build("@bob:b.example", "m.room.member", strp("@bob:b.example"),
		`{"membership":"join","join_authorised_via_users_server":"@alice:a.example"}`, []*Event{join}, []*Event{create, join})

	tests := []struct {
		name string
		e    *Event
		want error
	}{
		{"tampered content", withContent(msg, `{"body":"bye"}`), ErrContentHashMismatch},
		{"tampered redaction-kept content", withContent(join, `{"membership":"leave"}`), ErrBadSignature},
		{"signature by another key with the same id", resign(mustParse(t, v, reencode(msg, func(o canonicaljson.Value) canonicaljson.Value {
			return o.With("signatures", canonicaljson.ObjectValue())
		})), "a.example", stranger), ErrBadSignature},
		{"tampered signature bytes", mustParse(t, v, reencode(msg, func(o canonicaljson.Value) canonicaljson.Value {
			sig, _ := signing.Signature(o, "a.example", kr.key("a.example").ID())
			flipped := []byte(sig)
			flipped[5] ^= 1
			out, _ := signing.AddSignature(o, "a.example", kr.key("a.example").ID(), string(flipped))
			return out
		})), ErrBadSignature},
		{"no signatures", mustParse(t, v, reencode(msg, func(o canonicaljson.Value) canonicaljson.Value {
			return o.With("signatures", canonicaljson.ObjectValue())
		})), ErrMissingSignature},
		{"signed only by another server", resign(mustParse(t, v, reencode(msg, func(o canonicaljson.Value) canonicaljson.Value {
			return o.With("signatures", canonicaljson.ObjectValue())
		})), "b.example", kr.key("b.example")), ErrMissingSignature},
		{"restricted join missing the authorising server", viaJoin, ErrMissingSignature},
		{"no sha256 hash", mustParse(t, v, reencode(msg, func(o canonicaljson.Value) canonicaljson.Value {
			o = o.With("hashes", mustValue(t, `{"sha512":"x"}`)).With("signatures", canonicaljson.ObjectValue())
			sig := signing.EncodeBase64(kr.key("a.example").Sign(redactedSigningBytes(v.Redaction, o)))
			out, _ := signing.AddSignature(o, "a.example", kr.key("a.example").ID(), sig)
			return out
		})), ErrContentHashMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(t.Context(), tc.e, kr.lookup)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("restricted join signed by both servers", func(t *testing.T) {
		both := resign(viaJoin, "a.example", kr.key("a.example"))
		if err := Verify(t.Context(), both, kr.lookup); err != nil {
			t.Fatal(err)
		}
		if got := both.RequiredSigners(); len(got) != 2 {
			t.Errorf("RequiredSigners = %v", got)
		}
	})
	t.Run("hash mismatch is redacted, not dropped", func(t *testing.T) {
		ev, redacted, err := VerifyOrRedact(t.Context(), withContent(msg, `{"body":"bye"}`), kr.lookup)
		if err != nil || !redacted {
			t.Fatalf("got %v, %v", redacted, err)
		}
		if string(ev.Content()) != `{}` || ev.EventID() != msg.EventID() {
			t.Errorf("redacted event %s content %s", ev.EventID(), ev.Content())
		}
	})
	t.Run("bad signature is dropped", func(t *testing.T) {
		if ev, _, err := VerifyOrRedact(t.Context(), withContent(join, `{"membership":"ban"}`), kr.lookup); ev != nil || !errors.Is(err, ErrBadSignature) {
			t.Errorf("got %v, %v", ev, err)
		}
	})
}

func TestVerifyKeyLookup(t *testing.T) {
	kr := newKeyring(t, "a.example")
	tests := []struct {
		version string
		wantTS  int64
	}{
		{"4", 0},    // validity not enforced
		{"5", 1001}, // v5+: the key must be valid at origin_server_ts
	}
	for _, tc := range tests {
		t.Run("v"+tc.version, func(t *testing.T) {
			v := roomversion.MustLookup(roomversion.ID(tc.version))
			b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1000}
			create, _ := b.createRoom("@alice:a.example")
			var gotTS int64 = -1
			lookup := func(ctx context.Context, s id.ServerName, keyID string, atTS int64) (ed25519.PublicKey, error) {
				gotTS = atTS
				return kr.lookup(ctx, s, keyID, atTS)
			}
			if err := Verify(t.Context(), create, lookup); err != nil {
				t.Fatal(err)
			}
			if gotTS != tc.wantTS {
				t.Errorf("atTS = %d, want %d", gotTS, tc.wantTS)
			}
		})
	}
	t.Run("unknown key is skipped, then missing", func(t *testing.T) {
		v := roomversion.MustLookup("10")
		b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
		create, _ := b.createRoom("@alice:a.example")
		err := Verify(t.Context(), create, keyring{}.lookup)
		if !errors.Is(err, ErrMissingSignature) || !errors.Is(err, errUnknownKey) {
			t.Errorf("got %v", err)
		}
	})
}

func TestRequiredSigners(t *testing.T) {
	v1 := roomversion.MustLookup("1")
	v7 := roomversion.MustLookup("7")
	v9 := roomversion.MustLookup("9")
	base := func(v roomversion.Version, extra string) string {
		s := `{"type":"m.room.member","state_key":"@u:u.example","sender":"@u:u.example","room_id":"!r:r.example",
			"origin_server_ts":1,"depth":1,"prev_events":[],"auth_events":[],"hashes":{},"signatures":{},` + extra
		if v.EventFormat == roomversion.FormatV1 {
			s += `,"event_id":"$e:e.example"`
		}
		return s + "}"
	}
	tests := []struct {
		name string
		v    roomversion.Version
		json string
		want []id.ServerName
	}{
		{"v1 sender and event id servers", v1, base(v1, `"content":{"membership":"join"}`), []id.ServerName{"u.example", "e.example"}},
		{"v9 restricted join", v9, base(v9, `"content":{"membership":"join","join_authorised_via_users_server":"@a:a.example"}`), []id.ServerName{"u.example", "a.example"}},
		{"v7 has no restricted joins", v7, base(v7, `"content":{"membership":"join","join_authorised_via_users_server":"@a:a.example"}`), []id.ServerName{"u.example"}},
		{"third-party invite", v9, base(v9, `"content":{"membership":"invite","third_party_invite":{"signed":{}}}`), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustParse(t, tc.v, []byte(tc.json))
			got := e.RequiredSigners()
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// A third-party invite has no required signer but needs some valid
// signature.
func TestVerifyThirdPartyInvite(t *testing.T) {
	v := roomversion.MustLookup("10")
	kr := newKeyring(t, "a.example", "b.example")
	b := &builder{t: t, v: v, server: "b.example", key: kr.key("b.example"), room: "!r:a.example", ts: 1}
	inv := b.build("@alice:a.example", "m.room.member", strp("@carol:c.example"),
		`{"membership":"invite","third_party_invite":{"display_name":"c","signed":{"mxid":"@carol:c.example","token":"tok","signatures":{}}}}`, nil, nil)
	if err := Verify(t.Context(), inv, kr.lookup); err != nil {
		t.Errorf("signed by the relaying server: %v", err)
	}
	unsigned := mustParse(t, v, reencode(inv, func(o canonicaljson.Value) canonicaljson.Value {
		return o.With("signatures", canonicaljson.ObjectValue())
	}))
	if err := Verify(t.Context(), unsigned, kr.lookup); !errors.Is(err, ErrMissingSignature) {
		t.Errorf("unsigned: got %v", err)
	}
}
