package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// ThirdPartyInvite is the content of m.room.third_party_invite.
type ThirdPartyInvite struct {
	DisplayName    string      `json:"display_name"`
	KeyValidityURL string      `json:"key_validity_url,omitempty"`
	PublicKey      string      `json:"public_key,omitempty"`
	PublicKeys     []PublicKey `json:"public_keys,omitempty"`
}

// PublicKey is one entry of public_keys.
type PublicKey struct {
	PublicKey      string `json:"public_key"`
	KeyValidityURL string `json:"key_validity_url,omitempty"`
}

// ParseThirdPartyInvite reads an m.room.third_party_invite content.
func ParseThirdPartyInvite(content json.RawMessage) (*ThirdPartyInvite, error) {
	var t ThirdPartyInvite
	if err := json.Unmarshal(content, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Keys returns every public key: public_key and those of public_keys
// (spec rule "the public keys are in content as …").
func (t *ThirdPartyInvite) Keys() []string {
	keys := make([]string, 0, 1+len(t.PublicKeys))
	if t.PublicKey != "" {
		keys = append(keys, t.PublicKey)
	}
	for _, k := range t.PublicKeys {
		if k.PublicKey != "" {
			keys = append(keys, k.PublicKey)
		}
	}
	return keys
}

// signedBlock is content.third_party_invite.signed of an invite.
type signedBlock struct {
	MXID       *string                      `json:"mxid"`
	Token      *string                      `json:"token"`
	Signatures map[string]map[string]string `json:"signatures"`
}

// checkThirdPartyInvite is the invite sub-rule for content that has
// third_party_invite (x.y.1.1 to x.y.1.8 of the membership rules).
func (c *checker) checkThirdPartyInvite(m *Member, target id.UserID) error {
	n := c.n
	if membershipOf(c.state, target) == Ban {
		return deny(n.invite(1, 1), "target is banned")
	}
	rawSigned, err := member(m.ThirdPartyInvite, "signed")
	if err != nil || rawSigned == nil || rawSigned[0] != '{' {
		return deny(n.invite(1, 2), "third_party_invite has no signed object")
	}
	var signed signedBlock
	if err := json.Unmarshal(rawSigned, &signed); err != nil {
		signed = signedBlock{} // a malformed signatures object verifies nothing
		var basic struct {
			MXID  *string `json:"mxid"`
			Token *string `json:"token"`
		}
		if json.Unmarshal(rawSigned, &basic) != nil {
			return deny(n.invite(1, 3), "signed has no string mxid and token")
		}
		signed.MXID, signed.Token = basic.MXID, basic.Token
	}
	if signed.MXID == nil || signed.Token == nil {
		return deny(n.invite(1, 3), "signed has no mxid or token")
	}
	if *signed.MXID != string(target) {
		return deny(n.invite(1, 4), "signed.mxid does not match state_key")
	}
	tpi := c.state.StateEvent(TypeThirdPartyInvite, *signed.Token)
	if tpi == nil {
		return deny(n.invite(1, 5), "no m.room.third_party_invite for the token")
	}
	if tpi.Sender() != c.ev.Sender() {
		return deny(n.invite(1, 6), "sender did not send the m.room.third_party_invite")
	}
	invite, err := ParseThirdPartyInvite(tpi.Content())
	if err == nil && verifySigned(rawSigned, signed.Signatures, invite.Keys()) {
		return nil
	}
	return deny(n.invite(1, 8), "no signature in signed matches a public key of the invite")
}

// verifySigned reports whether any ed25519 signature of the signed object
// verifies against any of the public keys, over the canonical JSON of the
// object without "signatures" and "unsigned" (appendices, "Signing JSON").
func verifySigned(rawSigned []byte, signatures map[string]map[string]string, publicKeys []string) bool {
	if len(signatures) == 0 || len(publicKeys) == 0 {
		return false
	}
	obj, err := canonicaljson.ParseLenient(rawSigned)
	if err != nil {
		return false
	}
	message := signing.SigningBytes(obj)
	keys := make([]ed25519.PublicKey, 0, len(publicKeys))
	for _, k := range publicKeys {
		if b, ok := decodeBase64(k); ok && len(b) == ed25519.PublicKeySize {
			keys = append(keys, b)
		}
	}
	for entity, byKey := range signatures {
		for keyID, sig := range byKey {
			if !strings.HasPrefix(keyID, signing.Algorithm+":") {
				continue
			}
			for _, k := range keys {
				if signing.VerifyBytes(message, sig, entity, keyID, k) == nil {
					return true
				}
			}
		}
	}
	return false
}

// decodeBase64 accepts the spec's unpadded standard base64 and, because
// identity servers have published them, URL-safe and padded forms.
func decodeBase64(s string) ([]byte, bool) {
	if b, err := signing.DecodeBase64(s); err == nil {
		return b, true
	}
	if b, err := signing.DecodeURLBase64(s); err == nil {
		return b, true
	}
	return nil, false
}
