package apptest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestMain of package apptest's tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestFederationKeysOverTLS: servers find each other through the resolve
// map, talk TLS with certificates of the test CA, fetch each other's keys
// directly and, when a server is down, through a notary that is another
// Parley.
func TestFederationKeysOverTLS(t *testing.T) {
	servers := apptest.StartFederation(t, 3, func(cfg *config.Config) {
		if cfg.ServerName == "hs1.test" {
			cfg.Federation.TrustedKeyServers = map[string]string{"hs2.test": ""}
		}
	})
	hs1, hs2, hs3 := servers[0], servers[1], servers[2]
	ctx := context.Background()
	now := time.Now().UnixMilli()

	pub, err := hs1.App.Keyring().VerifyKey(ctx, hs2.Name, hs2.App.SigningKey().ID(), now)
	if err != nil || !pub.Equal(hs2.App.SigningKey().Public()) {
		t.Fatalf("hs1 fetching hs2's key: %v", err)
	}
	var version struct {
		Server struct{ Name string } `json:"server"`
	}
	if err := hs1.App.FederationClient().Do(ctx, hs2.Name, "GET", "/_matrix/federation/v1/version", nil, &version); err != nil || version.Server.Name != "Parley" {
		t.Fatalf("hs1 → hs2 /version: %+v, %v", version, err)
	}

	// hs2 learns hs3's key; hs3 goes away; hs1 gets it from hs2, the
	// notary, countersigned.
	if _, err := hs2.App.Keyring().VerifyKey(ctx, hs3.Name, hs3.App.SigningKey().ID(), now); err != nil {
		t.Fatalf("hs2 fetching hs3's key: %v", err)
	}
	hs3.Stop(t)
	pub, err = hs1.App.Keyring().VerifyKey(ctx, hs3.Name, hs3.App.SigningKey().ID(), now)
	if err != nil || !pub.Equal(hs3.App.SigningKey().Public()) {
		t.Fatalf("hs1 fetching hs3's key through hs2: %v", err)
	}
	// The key is now in hs1's database: still known after a restart.
	fedURL := hs1.FederationURL
	hs1.Restart(t)
	if _, err := hs1.App.Keyring().VerifyKey(ctx, hs3.Name, hs3.App.SigningKey().ID(), now); err != nil {
		t.Fatalf("hs3's key after hs1's restart: %v", err)
	}
	// The restarted server kept its federation port: the others still
	// reach it through their resolve maps.
	if hs1.FederationURL != fedURL {
		t.Errorf("federation listener moved from %s to %s", fedURL, hs1.FederationURL)
	}
	if err := hs2.App.FederationClient().Do(ctx, hs1.Name, "GET", "/_matrix/federation/v1/version", nil, nil); err != nil {
		t.Errorf("hs2 → restarted hs1: %v", err)
	}
}

// TestFederationListenerServesKeysToAnyone: the key endpoints need no
// authentication; the certificate is the CA's for the server name.
func TestFederationListenerServesKeysToAnyone(t *testing.T) {
	hs1 := apptest.StartFederation(t, 1)[0]
	roots := x509.NewCertPool()
	roots.AddCert(hs1.CA.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "hs1.test"}}}
	res, err := client.Get(hs1.FederationURL + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	keys, err := keyring.ParseKeyResponse(raw, hs1.Name, time.Now())
	if res.StatusCode != 200 || err != nil || !keys[0].Key.Equal(hs1.App.SigningKey().Public()) {
		t.Fatalf("key document: %d %s %v", res.StatusCode, raw, err)
	}
	res, err = client.Get(hs1.FederationURL + "/_matrix/federation/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 404 || body["errcode"] != "M_UNRECOGNIZED" {
		t.Errorf("unknown endpoint: %d %v", res.StatusCode, body)
	}
}

// TestFederationRefusesPrivateAddressesByDefault: without
// allow_private_addresses, a server on loopback is not contacted even
// when the resolve map names it.
func TestFederationRefusesPrivateAddressesByDefault(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(cfg *config.Config) {
		cfg.Federation.AllowPrivateAddresses = false
	})
	err := servers[0].App.FederationClient().Do(context.Background(), servers[1].Name, "GET", "/_matrix/federation/v1/version", nil, nil)
	if err == nil || fedclient.StatusOf(err) != 0 {
		t.Fatalf("request to a loopback server: %v, want refused before any answer", err)
	}
	if _, err := servers[0].App.Keyring().VerifyKey(context.Background(), servers[1].Name, servers[1].App.SigningKey().ID(), 0); !errors.Is(err, keyring.ErrKeyNotFound) {
		t.Errorf("key fetch from a loopback server: %v", err)
	}
}

// TestFederationRequestAuthentication: a request hs1 signs is accepted by
// hs2 (which fetches hs1's key over TLS); forged, misaddressed or
// unknown-key requests are refused with 401 M_UNAUTHORIZED.
func TestFederationRequestAuthentication(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	hs2.Register(t, "alice", "correct horse battery")
	ctx := context.Background()
	path := "/_matrix/federation/v1/query/profile?user_id=%40alice%3Ahs2.test"

	var profile map[string]any
	if err := hs1.App.FederationClient().Do(ctx, hs2.Name, "GET", path, nil, &profile); err != nil {
		t.Fatalf("signed request from hs1: %v", err)
	}
	if profile["displayname"] != "alice" {
		t.Errorf("profile = %v", profile)
	}

	roots := x509.NewCertPool()
	roots.AddCert(hs2.CA.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "hs2.test"}}}
	forger, _ := signing.Generate(hs1.App.SigningKey().ID())
	sign := func(k signing.Key, origin, dest id.ServerName) string {
		h, err := xmatrix.Sign(k, origin, dest, "GET", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	unknownKey, _ := signing.Generate("ed25519:unknown")
	for name, auth := range map[string]string{
		"no signature":               "",
		"forged with hs1's key id":   sign(forger, hs1.Name, hs2.Name),
		"key hs1 does not have":      sign(unknownKey, hs1.Name, hs2.Name),
		"server that does not exist": sign(unknownKey, "hs9.test", hs2.Name),
		"signed for another server":  sign(hs1.App.SigningKey(), hs1.Name, "hs3.test"),
	} {
		req, _ := http.NewRequest("GET", hs2.FederationURL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 401 || body["errcode"] != "M_UNAUTHORIZED" {
			t.Errorf("%s: %d %v, want 401 M_UNAUTHORIZED", name, res.StatusCode, body)
		}
	}
}
