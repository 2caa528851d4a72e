// Package signing holds a server's ed25519 signing key and signs and
// verifies JSON objects the Matrix way (spec appendices, "Signing JSON"):
// the object without "signatures" and "unsigned", encoded as canonical
// JSON, signed, the signature added under signatures[entity][key_id].
// Events, federation requests and key responses all use it.
//
// It imports only the standard library, id and rooms/canonicaljson.
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Algorithm is the only signing algorithm the spec defines.
const Algorithm = "ed25519"

var (
	// ErrBadKey: a key id, seed or public key is malformed.
	ErrBadKey = errors.New("signing: bad key")
	// ErrBadSignature: a signature is malformed or does not verify.
	ErrBadSignature = errors.New("signing: bad signature")
	// ErrNoSignature: the object has no signature by that entity and key.
	ErrNoSignature = errors.New("signing: no signature")
)

// Key is an ed25519 signing key and its key id, for example
// "ed25519:a_AbCd". Callers persist ID and Seed(); the private key never
// leaves this type otherwise.
type Key struct {
	id   string
	priv ed25519.PrivateKey
	// live, when set, is the key this one stands for now (Live): a
	// server's key rotated while it runs.
	live *Live
}

// ValidKeyID reports whether keyID is "ed25519:" followed by a version made
// of [a-zA-Z0-9_], the key id grammar of the key server API.
func ValidKeyID(keyID string) bool {
	version, ok := strings.CutPrefix(keyID, Algorithm+":")
	if !ok || version == "" {
		return false
	}
	for i := 0; i < len(version); i++ {
		c := version[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Generate creates a new random key with the given key id.
func Generate(keyID string) (Key, error) {
	if !ValidKeyID(keyID) {
		return Key{}, fmt.Errorf("%w: key id %q", ErrBadKey, keyID)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return Key{}, fmt.Errorf("signing: generate key: %w", err)
	}
	return Key{id: keyID, priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// NewKey builds the key of a 32-byte seed.
func NewKey(keyID string, seed []byte) (Key, error) {
	if !ValidKeyID(keyID) {
		return Key{}, fmt.Errorf("%w: key id %q", ErrBadKey, keyID)
	}
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKey, len(seed), ed25519.SeedSize)
	}
	return Key{id: keyID, priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// ParseSeed builds the key of a seed persisted as unpadded Base64 (the form
// Seed returns and Synapse's signing key files use).
func ParseSeed(keyID, seed string) (Key, error) {
	b, err := DecodeBase64(seed)
	if err != nil {
		return Key{}, fmt.Errorf("%w: seed is not base64: %v", ErrBadKey, err)
	}
	return NewKey(keyID, b)
}

// Current is the key k stands for now: k itself, or for a key of a Live
// the one it holds at this moment. Code that uses both ID and Sign takes
// it first, so that a rotation between the two cannot pair one key's id
// with the other's signature.
func (k Key) Current() Key {
	if k.live != nil {
		return *k.live.cur.Load()
	}
	return k
}

// ID is the key id, "ed25519:<version>".
func (k Key) ID() string { return k.Current().id }

// Seed is the unpadded Base64 seed to persist.
func (k Key) Seed() string { return EncodeBase64(k.Current().priv.Seed()) }

// Public is the verification key.
func (k Key) Public() ed25519.PublicKey { return k.Current().priv.Public().(ed25519.PublicKey) }

// PublicBase64 is the verification key as published in key responses.
func (k Key) PublicBase64() string { return EncodeBase64(k.Public()) }

// Sign signs msg.
func (k Key) Sign(msg []byte) []byte { return ed25519.Sign(k.Current().priv, msg) }

// ParsePublicKey decodes an unpadded Base64 ed25519 verification key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := DecodeBase64(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key %q", ErrBadKey, s)
	}
	return ed25519.PublicKey(b), nil
}
