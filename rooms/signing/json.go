package signing

import (
	"crypto/ed25519"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// SigningBytes is what a signature of the object covers: its canonical
// encoding without "signatures" and "unsigned" (appendices, "Signing
// Details").
func SigningBytes(obj canonicaljson.Value) []byte {
	return canonicaljson.AppendWithout(nil, obj, "signatures", "unsigned")
}

// Sign signs the object obj as entity (a server name, or a user id for
// cross-signing) and returns it with the signature added to those already
// present under signatures[entity][key id].
func Sign(obj canonicaljson.Value, entity string, k Key) (canonicaljson.Value, error) {
	if obj.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fmt.Errorf("signing: sign a JSON %s: want an object", obj.Kind())
	}
	k = k.Current()
	sig := EncodeBase64(k.Sign(SigningBytes(obj)))
	return AddSignature(obj, entity, k.ID(), sig)
}

// AddSignature returns obj with signatures[entity][keyID] = sig, keeping
// every other signature.
func AddSignature(obj canonicaljson.Value, entity, keyID, sig string) (canonicaljson.Value, error) {
	sigs, ok := obj.Get("signatures")
	if !ok {
		sigs = canonicaljson.ObjectValue()
	} else if sigs.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fmt.Errorf("%w: signatures is a %s", ErrBadSignature, sigs.Kind())
	}
	mine, ok := sigs.Get(entity)
	if !ok {
		mine = canonicaljson.ObjectValue()
	} else if mine.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fmt.Errorf("%w: signatures of %s is a %s", ErrBadSignature, entity, mine.Kind())
	}
	mine = mine.With(keyID, canonicaljson.StringValue(sig))
	return obj.With("signatures", sigs.With(entity, mine)), nil
}

// SignJSON signs a JSON object given as bytes and returns the signed object
// as canonical JSON; what federation requests and key responses use.
func SignJSON(data []byte, entity string, k Key) ([]byte, error) {
	obj, err := canonicaljson.ParseStrict(data)
	if err != nil {
		return nil, err
	}
	signed, err := Sign(obj, entity, k)
	if err != nil {
		return nil, err
	}
	return canonicaljson.Encode(signed), nil
}

// SignServer is Sign for a server name.
func SignServer(obj canonicaljson.Value, server id.ServerName, k Key) (canonicaljson.Value, error) {
	return Sign(obj, string(server), k)
}

// Signature returns the Base64 signature of entity by keyID in obj.
func Signature(obj canonicaljson.Value, entity, keyID string) (string, bool) {
	sigs, _ := obj.Get("signatures")
	mine, _ := sigs.Get(entity)
	return mine.GetString(keyID)
}

// KeyIDs returns the ed25519 key ids entity signed obj with; key ids of
// algorithms this package does not understand are left out, as the spec's
// "Checking for a Signature" says.
func KeyIDs(obj canonicaljson.Value, entity string) []string {
	sigs, _ := obj.Get("signatures")
	mine, _ := sigs.Get(entity)
	var ids []string
	for _, m := range mine.Members() {
		if strings.HasPrefix(m.Key, Algorithm+":") && m.Value.Kind() == canonicaljson.String {
			ids = append(ids, m.Key)
		}
	}
	return ids
}

// Verify checks entity's signature by keyID on obj against pub.
func Verify(obj canonicaljson.Value, entity, keyID string, pub ed25519.PublicKey) error {
	sig, ok := Signature(obj, entity, keyID)
	if !ok {
		return fmt.Errorf("%w: by %s with %s", ErrNoSignature, entity, keyID)
	}
	return VerifyBytes(SigningBytes(obj), sig, entity, keyID, pub)
}

// VerifyBytes checks a Base64 signature over already computed signing
// bytes, so that callers checking several signatures encode only once.
func VerifyBytes(msg []byte, sig, entity, keyID string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %s %s has %d bytes", ErrBadKey, entity, keyID, len(pub))
	}
	raw, err := DecodeBase64(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature of %s with %s is not a base64 ed25519 signature", ErrBadSignature, entity, keyID)
	}
	if !ed25519.Verify(pub, msg, raw) {
		return fmt.Errorf("%w: signature of %s with %s does not verify", ErrBadSignature, entity, keyID)
	}
	return nil
}
