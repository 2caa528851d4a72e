package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedclient"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/signing"
)

// runFederation is `parley federation check SERVER`: what this server's
// configuration makes of another server — where discovery leads, whether
// TLS and /version answer, and its keys, verified. It needs no database.
func runFederation(ctx context.Context, cfg *config.Config, args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "check" {
		return usagef("usage: parley federation check SERVER_NAME")
	}
	server, err := id.ParseServerName(args[1])
	if err != nil {
		return usagef("%v", err)
	}
	// An unsigned client: the checks use only endpoints that need no
	// authentication, so the server's own key is not needed.
	key, err := signing.Generate("ed25519:check")
	if err != nil {
		return err
	}
	client, err := fedclient.New(fedclient.Config{ServerName: cfg.ServerName, Key: key, Federation: cfg.Federation},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer client.Close()
	target, err := client.Resolve(ctx, server)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	fmt.Fprintf(out, "target      %s (Host: %s, certificate for %s)\n", target.Addr, target.Host, target.TLSName)
	for _, addr := range target.Fallbacks {
		fmt.Fprintf(out, "  then      %s (further SRV record, tried when the ones before do not connect)\n", addr)
	}
	var version struct {
		Server struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"server"`
	}
	if err := client.DoUnsigned(ctx, server, "GET", "/_matrix/federation/v1/version", nil, &version); err != nil {
		return fmt.Errorf("GET /_matrix/federation/v1/version: %w", err)
	}
	fmt.Fprintf(out, "software    %s %s\n", version.Server.Name, version.Server.Version)
	var raw []byte
	if err := client.DoUnsigned(ctx, server, "GET", "/_matrix/key/v2/server", nil, &raw); err != nil {
		return fmt.Errorf("GET /_matrix/key/v2/server: %w", err)
	}
	keys, err := keyring.ParseKeyResponse(raw, server, time.Now())
	if err != nil {
		return fmt.Errorf("key document: %w", err)
	}
	for _, k := range keys {
		if k.ExpiredTS != 0 {
			fmt.Fprintf(out, "old key     %s %s expired %s\n", k.KeyID, signing.EncodeBase64(k.Key), time.UnixMilli(k.ExpiredTS).UTC().Format(time.RFC3339))
			continue
		}
		fmt.Fprintf(out, "key         %s %s valid until %s\n", k.KeyID, signing.EncodeBase64(k.Key), time.UnixMilli(k.ValidUntilTS).UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(out, "ok")
	return nil
}
