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
	hs1.Restart(t)
	if _, err := hs1.App.Keyring().VerifyKey(ctx, hs3.Name, hs3.App.SigningKey().ID(), now); err != nil {
		t.Fatalf("hs3's key after hs1's restart: %v", err)
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
