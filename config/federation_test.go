package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFederationFromEnvironmentAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.yaml")
	file := "federation:\n  trusted_key_servers:\n    notary.example: \"ed25519:auto=Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw\"\n  key_validity_period: 2h\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, true, []string{
		"PARLEY_FEDERATION_RESOLVE=hs1=127.0.0.1:8448, hs2=127.0.0.1:8449",
		"PARLEY_FEDERATION_ALLOW_PRIVATE_ADDRESSES=true",
	})
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Federation
	if f.Resolve["hs1"] != "127.0.0.1:8448" || f.Resolve["hs2"] != "127.0.0.1:8449" || len(f.Resolve) != 2 {
		t.Errorf("resolve = %v", f.Resolve)
	}
	if !f.AllowPrivateAddresses || f.KeyValidityPeriod != 2*time.Hour {
		t.Errorf("allow_private_addresses %v key_validity_period %s", f.AllowPrivateAddresses, f.KeyValidityPeriod)
	}
	keys, err := NotaryKeys(f.TrustedKeyServers["notary.example"])
	if err != nil || len(keys["ed25519:auto"]) != 32 {
		t.Errorf("notary keys = %v, %v", keys, err)
	}
}

func TestFederationValidation(t *testing.T) {
	env := []string{
		"PARLEY_FEDERATION_RESOLVE=bad name=127.0.0.1:1,hs2=noport",
		"PARLEY_FEDERATION_TRUSTED_KEY_SERVERS=notary.example=ed25519:x=notbase64!",
		"PARLEY_FEDERATION_REQUEST_TIMEOUT=0s",
		"PARLEY_FEDERATION_KEY_VALIDITY_PERIOD=720h",
		"PARLEY_FEDERATION_CA_FILE=/nonexistent/ca.pem",
	}
	_, err := Load("", false, env)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	want := []string{
		`federation.resolve: "bad name"`,
		"federation.resolve: hs2: not a host:port",
		"federation.trusted_key_servers: notary.example",
		"federation.request_timeout",
		"federation.key_validity_period",
		"federation.ca_file",
	}
	for _, w := range want {
		found := false
		for _, p := range verr.Problems {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("no problem %q in %q", w, verr.Problems)
		}
	}
}
