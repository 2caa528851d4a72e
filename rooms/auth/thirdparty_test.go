package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

// The identity server's key; a fixed seed keeps the test deterministic.
var (
	isKey    = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	isPublic = base64.RawStdEncoding.EncodeToString(isKey.Public().(ed25519.PublicKey))
	otherKey = ed25519.NewKeyFromSeed([]byte("0123456789abcdef0123456789abcdef"))
)

// signedFor returns content.third_party_invite.signed for mxid and token,
// signed by key: the signature is over the canonical JSON of the object
// without "signatures", which for these keys is the sorted, compact form.
func signedFor(t *testing.T, key ed25519.PrivateKey, mxid, token string) map[string]any {
	t.Helper()
	msg, err := json.Marshal(map[string]string{"mxid": mxid, "sender": string(alice), "token": token})
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(key, msg))
	return map[string]any{
		"mxid": mxid, "sender": string(alice), "token": token,
		"signatures": map[string]any{"id.test": map[string]any{"ed25519:0": sig}},
	}
}

func TestThirdPartyInviteRules(t *testing.T) {
	// tpRoom: alice published a third-party invite with token "tok".
	tpRoom := func(r *authtest.Room, content map[string]any) {
		if content == nil {
			content = map[string]any{"display_name": "b...@example", "public_key": isPublic,
				"key_validity_url": "https://id.test/isvalid"}
		}
		r.Add(stateEv(auth.TypeThirdPartyInvite, "tok", alice, content))
	}
	invite := func(sender string, tpi any) authtest.Spec {
		return memberEv(idOf(sender), bob, map[string]any{"membership": "invite", "third_party_invite": tpi})
	}
	valid := func(t *testing.T) map[string]any {
		return map[string]any{"display_name": "b...@example", "signed": signedFor(t, isKey, string(bob), "tok")}
	}
	runRuleCases(t, []ruleCase{
		{name: "third-party invite signed by the invite's public_key", versions: "1-12", rule: inviteRule("1.7"), allow: true,
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), valid(t)))
			}},
		{name: "third-party invite signed by a key in public_keys", versions: "1-12", rule: inviteRule("1.7"), allow: true,
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, map[string]any{"display_name": "x", "public_key": base64.RawStdEncoding.EncodeToString(otherKey.Public().(ed25519.PublicKey)),
					"public_keys": []map[string]any{{"public_key": base64.RawURLEncoding.EncodeToString(isKey.Public().(ed25519.PublicKey))}}})
				return r.Build(invite(string(alice), valid(t)))
			}},
		{name: "third-party invite of a banned user", versions: "1-12", rule: inviteRule("1.1"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				r.Member(alice, bob, auth.Ban)
				return r.Build(invite(string(alice), valid(t)))
			}},
		{name: "third-party invite without signed", versions: "1-12", rule: inviteRule("1.2"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), map[string]any{"display_name": "x"}))
			}},
		{name: "third-party invite without token", versions: "1-12", rule: inviteRule("1.3"),
			setup: func(_ *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), map[string]any{"signed": map[string]any{"mxid": string(bob)}}))
			}},
		{name: "third-party invite whose mxid is not the target", versions: "1-12", rule: inviteRule("1.4"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), map[string]any{"signed": signedFor(t, isKey, string(carol), "tok")}))
			}},
		{name: "third-party invite with an unknown token", versions: "1-12", rule: inviteRule("1.5"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), map[string]any{"signed": signedFor(t, isKey, string(bob), "other")}))
			}},
		{name: "third-party invite sent by someone else than the invite's sender", versions: "1-12", rule: inviteRule("1.6"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				r.Join(carol)
				return r.Build(invite(string(carol), valid(t)))
			}},
		{name: "third-party invite signed by another key", versions: "1-12", rule: inviteRule("1.8"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				return r.Build(invite(string(alice), map[string]any{"signed": signedFor(t, otherKey, string(bob), "tok")}))
			}},
		{name: "third-party invite whose signed content was altered", versions: "1-12", rule: inviteRule("1.8"),
			setup: func(t *testing.T, r *authtest.Room) auth.Event {
				tpRoom(r, nil)
				s := signedFor(t, isKey, string(bob), "tok")
				s["sender"] = string(carol)
				return r.Build(invite(string(alice), map[string]any{"signed": s}))
			}},
	})
}

func idOf(s string) id.UserID { return id.UserID(s) }
