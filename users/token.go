package users

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Token prefixes make a leaked token recognisable (secret scanners, logs)
// without revealing anything about it.
const (
	prefixAccess  = "pat_"
	prefixRefresh = "prt_"
	prefixLogin   = "plt_"
)

// TokenHash is the SHA-256 of a token: the only form in which tokens are
// stored, so a database dump does not hand out sessions.
type TokenHash [32]byte

// newToken returns a random token with the given prefix: 32 bytes from
// crypto/rand, URL-safe base64.
func newToken(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go ≥ 1.24 panics
		// inside Read itself); keep the signature simple.
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken returns the stored form of a token.
func HashToken(token string) TokenHash {
	return sha256.Sum256([]byte(token))
}

// randomString returns n random characters of alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String()
}

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newDeviceID returns a fresh device id in the style clients are used to
// (ten upper-case letters).
func newDeviceID() string { return randomString(10, upperAlnum) }
