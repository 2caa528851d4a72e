package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parleyhq/parley/rooms/signing"
)

// signingKeyFile is the server's ed25519 signing key in data_dir, one line
// "ed25519 <version> <unpadded base64 seed>" — the format Synapse's
// signing.key uses, so operators can carry a key across.
const signingKeyFile = "signing.key"

// loadOrCreateSigningKey returns the server's signing key, generating it
// into dataDir on first start (key id "ed25519:" + a short random version)
// and reusing it after: peers cache it, so it must survive restarts.
func loadOrCreateSigningKey(dataDir string) (signing.Key, error) {
	path := filepath.Join(dataDir, signingKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		return parseSigningKeyFile(data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return signing.Key{}, fmt.Errorf("read signing key: %w", err)
	}
	version, err := randomKeyVersion()
	if err != nil {
		return signing.Key{}, err
	}
	key, err := signing.Generate(signing.Algorithm + ":" + version)
	if err != nil {
		return signing.Key{}, err
	}
	line := fmt.Sprintf("%s %s %s\n", signing.Algorithm, version, key.Seed())
	if err := writeFileAtomic(path, []byte(line), 0o600); err != nil {
		return signing.Key{}, err
	}
	return key, nil
}

func parseSigningKeyFile(data []byte) (signing.Key, error) {
	fields := strings.Fields(string(data))
	if len(fields) != 3 || fields[0] != signing.Algorithm {
		return signing.Key{}, fmt.Errorf("signing key file: want one line %q", "ed25519 <version> <seed>")
	}
	key, err := signing.ParseSeed(fields[0]+":"+fields[1], fields[2])
	if err != nil {
		return signing.Key{}, fmt.Errorf("signing key file: %w", err)
	}
	return key, nil
}

// randomKeyVersion is a short random key version of [a-zA-Z0-9].
func randomKeyVersion() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key version: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "a_" + string(b), nil
}
