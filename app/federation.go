package app

import (
	"crypto/ed25519"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage"
)

// openFederation builds the outbound federation client and the keyring
// (our key document, other servers' keys cached in Postgres). Both exist
// even when listen.federation is empty: the server may still call others.
func (a *App) openFederation(registry prometheus.Registerer) error {
	cfg := a.cfg
	// Every holder of the key follows a rotation (app/keyrotation.go).
	a.liveSigningKey()
	client, err := fedclient.New(fedclient.Config{
		ServerName: cfg.ServerName,
		Key:        a.signingKey,
		Federation: cfg.Federation,
		Registry:   registry,
	}, a.logger)
	if err != nil {
		return err
	}
	notaries, err := notaryKeys(cfg.Federation)
	if err != nil {
		return err
	}
	oldKeys, err := loadOldSigningKeys(cfg.DataDir)
	if err != nil {
		return err
	}
	a.fedClient = client
	a.keyring = keyring.New(keyring.Config{
		ServerName:     cfg.ServerName,
		Key:            a.signingKey,
		ValidityPeriod: cfg.Federation.KeyValidityPeriod,
		Notaries:       notaries,
		OldKeys:        oldKeys,
		Registry:       registry,
	}, storage.NewServerKeys(a.db.Pool), client, a.logger)
	return nil
}

// notaryKeys reads federation.trusted_key_servers.
func notaryKeys(f config.Federation) (map[id.ServerName]map[string]ed25519.PublicKey, error) {
	out := make(map[id.ServerName]map[string]ed25519.PublicKey, len(f.TrustedKeyServers))
	for name, value := range f.TrustedKeyServers {
		raw, err := config.NotaryKeys(value)
		if err != nil {
			return nil, fmt.Errorf("federation.trusted_key_servers: %s: %w", name, err)
		}
		keys := make(map[string]ed25519.PublicKey, len(raw))
		for keyID, k := range raw {
			keys[keyID] = ed25519.PublicKey(k)
		}
		out[id.ServerName(name)] = keys
	}
	return out, nil
}

// FederationClient is the outbound federation client.
func (a *App) FederationClient() *fedclient.Client { return a.fedClient }

// Keyring holds this server's key document and other servers' keys.
func (a *App) Keyring() *keyring.Keyring { return a.keyring }
