package signing

import (
	"encoding/base64"
	"strings"
)

// EncodeBase64 is the spec's unpadded standard Base64 (appendices,
// "Unpadded Base64").
func EncodeBase64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// EncodeURLBase64 is URL-safe unpadded Base64 (appendices, "URL-safe
// unpadded Base64"), used by event ids from room version 4 on.
func EncodeURLBase64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeBase64 decodes standard Base64 with or without padding, as the
// spec asks implementations to accept.
func DecodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// DecodeURLBase64 decodes URL-safe Base64 with or without padding.
func DecodeURLBase64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
