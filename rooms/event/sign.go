package event

import (
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// HashAndSign adds the content hash and server's signature to an event
// object (server-server API, "Adding hashes and signatures to outgoing
// events"): hashes.sha256 is set from the full event, then the redacted
// event is signed and the signature copied back, so that it still verifies
// once the event is redacted. Other hashes and signatures are kept.
//
// It works on any JSON object, valid event or not; Build uses it and then
// parses the result.
func HashAndSign(v roomversion.Version, obj canonicaljson.Value, server id.ServerName, k signing.Key) (canonicaljson.Value, error) {
	if obj.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, fmt.Errorf("%w: a JSON %s, want an object", ErrInvalidEvent, obj.Kind())
	}
	k = k.Current() // one key for the signature and its id
	h := ContentHash(obj)
	hashes, ok := obj.Get("hashes")
	if !ok || hashes.Kind() != canonicaljson.Object {
		hashes = canonicaljson.ObjectValue()
	}
	obj = obj.With("hashes", hashes.With("sha256", canonicaljson.StringValue(encodeStd(h[:]))))
	sig := signing.EncodeBase64(k.Sign(redactedSigningBytes(v.Redaction, obj)))
	return signing.AddSignature(obj, string(server), k.ID(), sig)
}
