package fede2ee

import (
	"crypto/ed25519"
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/rooms/signing"
)

// crossSigning uploads d's user's master key and, when withUSK, a
// user-signing key signed by it; it returns the master key object, its
// public key and the user-signing key's private key.
func crossSigning(t *testing.T, d *device, withUSK bool) (master obj, masterPub string, usk ed25519.PrivateKey) {
	t.Helper()
	_, mpriv, _ := ed25519.GenerateKey(nil)
	masterPub = signing.EncodeBase64(mpriv.Public().(ed25519.PublicKey))
	master = obj{"user_id": d.user, "usage": []string{"master"}, "keys": obj{"ed25519:" + masterPub: masterPub}}
	body := obj{"master_key": master}
	if withUSK {
		_, usk, _ = ed25519.GenerateKey(nil)
		upub := signing.EncodeBase64(usk.Public().(ed25519.PublicKey))
		body["user_signing_key"] = sign(t, obj{"user_id": d.user, "usage": []string{"user_signing"},
			"keys": obj{"ed25519:" + upub: upub}}, d.user, "ed25519:"+masterPub, mpriv)
	}
	apptest.MustStatus(t, d.srv.Do(t, http.MethodPost, v3+"/keys/device_signing/upload", d.token, body), http.StatusOK)
	return master, masterPub, usk
}

// TestUserSigningSignatures: alice@hs1 verifies carol@hs1 and bob@hs2 by
// signing their master keys with her user-signing key. Her signature of a
// remote user's master key is accepted (the key comes from bob's server)
// and both signatures show in her own queries only (spec "Cross-signing":
// they are visible to the user who made them): not to carol, not to bob's
// server.
func TestUserSigningSignatures(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	alice, carol := newDevice(t, hs1, "alice"), newDevice(t, hs1, "carol")
	bob := newDevice(t, hs2, "bob")
	_, _, usk := crossSigning(t, alice, true)
	uskPub := signing.EncodeBase64(usk.Public().(ed25519.PublicKey))
	carolMaster, carolPub, _ := crossSigning(t, carol, false)
	bobMaster, bobPub, _ := crossSigning(t, bob, false)

	res := hs1.Do(t, http.MethodPost, v3+"/keys/signatures/upload", alice.token, obj{
		carol.user: obj{carolPub: sign(t, carolMaster, alice.user, "ed25519:"+uskPub, usk)},
		bob.user:   obj{bobPub: sign(t, bobMaster, alice.user, "ed25519:"+uskPub, usk)},
	})
	apptest.MustStatus(t, res, http.StatusOK)
	if f, _ := res.Body["failures"].(map[string]any); len(f) != 0 {
		t.Fatalf("signature upload failures: %s", res.Raw)
	}
	aliceSig := func(srv *apptest.Server, token, user string) any {
		t.Helper()
		q := srv.Do(t, http.MethodPost, v3+"/keys/query", token, obj{"device_keys": obj{user: []string{}}})
		apptest.MustStatus(t, q, http.StatusOK)
		if field(q.Body, "master_keys", user) == nil {
			t.Fatalf("no master key of %s: %s", user, q.Raw)
		}
		return field(q.Body, "master_keys", user, "signatures", alice.user, "ed25519:"+uskPub)
	}
	for _, u := range []string{carol.user, bob.user} {
		if aliceSig(hs1, alice.token, u) == nil {
			t.Errorf("alice does not see her signature of %s's master key", u)
		}
	}
	if aliceSig(hs1, carol.token, carol.user) != nil {
		t.Error("carol sees alice's signature of her master key")
	}
	if aliceSig(hs2, bob.token, carol.user) != nil {
		t.Error("bob@hs2 sees alice's signature of carol's master key")
	}
	if aliceSig(hs2, bob.token, bob.user) != nil {
		t.Error("bob sees alice's signature of his master key")
	}

	// A signature by a key that is not alice's user-signing key fails,
	// per key.
	_, other, _ := ed25519.GenerateKey(nil)
	res = hs1.Do(t, http.MethodPost, v3+"/keys/signatures/upload", alice.token, obj{
		bob.user: obj{bobPub: sign(t, bobMaster, alice.user, "ed25519:"+uskPub, other)},
	})
	apptest.MustStatus(t, res, http.StatusOK)
	if field(res.Body, "failures", bob.user, bobPub, "errcode") != "M_INVALID_SIGNATURE" {
		t.Fatalf("a forged signature: %s", res.Raw)
	}
}
