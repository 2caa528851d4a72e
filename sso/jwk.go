package sso

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// JWK is one public key of a JSON Web Key Set (RFC 7517), decoded.
type JWK struct {
	KeyID     string
	Algorithm string // "" when the set does not pin one
	Key       crypto.PublicKey
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS decodes a JWK Set. Keys that are not for signatures, of a type
// JWT login does not use (symmetric "oct" keys above all: a shared secret
// has no business in a published set) or malformed are skipped, so that
// one odd key does not take the others down; a set without any usable key
// is an error.
func ParseJWKS(data []byte) ([]JWK, error) {
	var set struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []JWK
	for _, r := range set.Keys {
		if r.Use != "" && r.Use != "sig" {
			continue
		}
		k, err := r.publicKey()
		if err != nil {
			continue
		}
		keys = append(keys, JWK{KeyID: r.Kid, Algorithm: r.Alg, Key: k})
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return keys, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (r rawJWK) publicKey() (crypto.PublicKey, error) {
	switch r.Kty {
	case "RSA":
		n, err := b64(r.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("bad RSA modulus")
		}
		e, err := b64(r.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA exponent")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
		if key.N.BitLen() < 2048 || exp < 3 {
			return nil, errors.New("RSA key too weak")
		}
		if key.N.BitLen() > 8192 {
			return nil, errors.New("RSA key too large") // verification cost
		}
		return key, nil
	case "EC":
		var curve elliptic.Curve
		switch r.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", r.Crv)
		}
		x, errX := b64(r.X)
		y, errY := b64(r.Y)
		if errX != nil || errY != nil {
			return nil, errors.New("bad EC point")
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC point size")
		}
		// Decoding the uncompressed point checks that it is on the curve.
		point := append([]byte{4}, append(x, y...)...)
		key, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("bad EC point: %w", err)
		}
		return key, nil
	case "OKP":
		if r.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported curve %q", r.Crv)
		}
		x, err := b64(r.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", r.Kty)
}

// keyFits reports whether key can verify alg: the defence against
// algorithm confusion besides the fixed list of accepted algorithms (an
// RSA public key is never an HMAC secret, an EC key of one curve never
// verifies another curve's algorithm).
func keyFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
