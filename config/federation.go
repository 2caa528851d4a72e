package config

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/signing"
)

// Federation configures the Server-Server API (issue #7): how other
// servers are found and trusted, and our key document. Other federation
// sections (the outbound queue, …) are added here as one field each, their
// struct in a config/federation_<x>.go of their own.
type Federation struct {
	// Resolve maps a server name to the host:port to connect to, before
	// any discovery (tests and private deployments). The TLS server name
	// is still the server name's host.
	Resolve map[string]string `yaml:"resolve"`
	// CAFile is a PEM file of extra certificate authorities trusted for
	// outbound federation TLS, besides the system's.
	CAFile string `yaml:"ca_file"`
	// AllowPrivateAddresses lets outbound federation connect to loopback,
	// private, link-local and other non-public addresses. The check runs
	// at dial time, after DNS, so a name rebinding to 127.0.0.1 cannot
	// bypass it.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// TrustedKeyServers are the notaries asked for a server's keys when the
	// server itself does not answer (POST /_matrix/key/v2/query): server
	// name → its verify keys, "ed25519:<version>=<base64>" separated by
	// spaces, or "" to accept the notary's keys as fetched from it.
	TrustedKeyServers map[string]string `yaml:"trusted_key_servers"`
	// RequestTimeout bounds one outbound request, body included.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ConnectTimeout bounds the TCP connection and TLS handshake.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// KeyValidityPeriod is how long other servers may cache our key
	// document: its valid_until_ts is the time of the request plus this.
	KeyValidityPeriod time.Duration `yaml:"key_validity_period"`
	// Queue tunes the outbound queue (config/federation_queue.go).
	Queue FederationQueue `yaml:"queue"`
}

// DefaultFederation is discovery only, no notary, public addresses only.
func DefaultFederation() Federation {
	return Federation{
		Resolve:           map[string]string{},
		TrustedKeyServers: map[string]string{},
		RequestTimeout:    60 * time.Second,
		ConnectTimeout:    10 * time.Second,
		KeyValidityPeriod: 24 * time.Hour,
		Queue:             DefaultFederationQueue(),
	}
}

// NotaryKeys parses a trusted_key_servers value: key id → public key.
func NotaryKeys(value string) (map[string][]byte, error) {
	keys := map[string][]byte{}
	for _, field := range strings.Fields(value) {
		keyID, b64, ok := strings.Cut(field, "=")
		if !ok || !strings.HasPrefix(keyID, signing.Algorithm+":") || len(keyID) == len(signing.Algorithm)+1 {
			return nil, fmt.Errorf("%q is not ed25519:<version>=<base64 key>", field)
		}
		raw, err := signing.DecodeBase64(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key %s is not a base64 ed25519 public key", keyID)
		}
		keys[keyID] = raw
	}
	return keys, nil
}

// validate adds the federation section's problems.
func (f *Federation) validate(add func(format string, args ...any)) {
	for _, name := range sortedKeys(f.Resolve) {
		if _, err := id.ParseServerName(name); err != nil {
			add("federation.resolve: %q: %v", name, err)
		}
		if _, _, err := net.SplitHostPort(f.Resolve[name]); err != nil {
			add("federation.resolve: %s: not a host:port address: %q", name, f.Resolve[name])
		}
	}
	for _, name := range sortedKeys(f.TrustedKeyServers) {
		if _, err := id.ParseServerName(name); err != nil {
			add("federation.trusted_key_servers: %q: %v", name, err)
		}
		if _, err := NotaryKeys(f.TrustedKeyServers[name]); err != nil {
			add("federation.trusted_key_servers: %s: %v", name, err)
		}
	}
	if f.CAFile != "" {
		if _, err := os.Stat(f.CAFile); err != nil {
			add("federation.ca_file: %v", err)
		}
	}
	if f.RequestTimeout <= 0 {
		add("federation.request_timeout: must be positive")
	}
	if f.ConnectTimeout <= 0 {
		add("federation.connect_timeout: must be positive")
	}
	// The spec lets others cache a key until valid_until_ts; a week is
	// the longest a room version before 5 honours anyway.
	if f.KeyValidityPeriod < time.Minute || f.KeyValidityPeriod > 7*24*time.Hour {
		add("federation.key_validity_period: must be between 1m and 168h, got %s", f.KeyValidityPeriod)
	}
	f.Queue.validate(add)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
