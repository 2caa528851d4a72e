package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/rooms/signing"
)

// oldSigningKeysFile lists our former signing keys in data_dir, one per
// line: "ed25519 <version> <unpadded base64 public key> <expired_ts ms>".
// They are announced in old_verify_keys so that the events they signed
// stay verifiable by servers that fetch our keys later.
const oldSigningKeysFile = "old_signing.keys"

// loadOldSigningKeys reads data_dir/old_signing.keys; none is no keys.
func loadOldSigningKeys(dataDir string) ([]keyring.OldKey, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, oldSigningKeysFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read old signing keys: %w", err)
	}
	var keys []keyring.OldKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 4 || fields[0] != signing.Algorithm {
			return nil, fmt.Errorf("%s line %d: want %q", oldSigningKeysFile, line, "ed25519 <version> <public key> <expired_ts>")
		}
		keyID := fields[0] + ":" + fields[1]
		pub, err := signing.ParsePublicKey(fields[2])
		if err != nil || !signing.ValidKeyID(keyID) {
			return nil, fmt.Errorf("%s line %d: bad key %s", oldSigningKeysFile, line, keyID)
		}
		expired, err := strconv.ParseInt(fields[3], 10, 64)
		if err != nil || expired <= 0 {
			return nil, fmt.Errorf("%s line %d: expired_ts is not a positive integer", oldSigningKeysFile, line)
		}
		keys = append(keys, keyring.OldKey{KeyID: keyID, Key: pub, ExpiredTS: expired})
	}
	return keys, nil
}

// RotateSigningKey retires the signing key in dataDir (appended to
// old_signing.keys, expired now) and generates a new one. The server picks
// it up at its next start; until then it keeps signing with the old key.
func RotateSigningKey(dataDir string, now time.Time) (oldID, newID string, err error) {
	current, err := loadOrCreateSigningKey(dataDir)
	if err != nil {
		return "", "", err
	}
	path := filepath.Join(dataDir, oldSigningKeysFile)
	existing, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("read old signing keys: %w", err)
	}
	version := strings.TrimPrefix(current.ID(), signing.Algorithm+":")
	line := fmt.Sprintf("%s %s %s %d\n", signing.Algorithm, version, current.PublicBase64(), now.UnixMilli())
	if len(existing) > 0 && !bytes.HasSuffix(existing, []byte("\n")) {
		existing = append(existing, '\n')
	}
	if err := writeFileAtomic(path, append(existing, line...), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Remove(filepath.Join(dataDir, signingKeyFile)); err != nil {
		return "", "", fmt.Errorf("retire signing key: %w", err)
	}
	next, err := loadOrCreateSigningKey(dataDir)
	if err != nil {
		return "", "", err
	}
	return current.ID(), next.ID(), nil
}

// SigningKeyIDs lists the current key id and the former ones of dataDir.
func SigningKeyIDs(dataDir string) (current string, old []keyring.OldKey, err error) {
	k, err := loadOrCreateSigningKey(dataDir)
	if err != nil {
		return "", nil, err
	}
	old, err = loadOldSigningKeys(dataDir)
	return k.ID(), old, err
}
