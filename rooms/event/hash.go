package event

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

func encodeStd(b []byte) string { return signing.EncodeBase64(b) }

// ContentHash is the sha256 of the event object without unsigned,
// signatures and hashes, as canonical JSON (server-server API, "Calculating
// the content hash for an event"). It covers the unredacted content.
func ContentHash(obj canonicaljson.Value) [32]byte {
	return sha256.Sum256(canonicaljson.AppendWithout(nil, obj, "unsigned", "signatures", "hashes"))
}

// redactedSigningBytes is the canonical form of the redacted event without
// signatures and unsigned: what the reference hash and the event
// signatures cover.
func redactedSigningBytes(rules roomversion.RedactionRules, obj canonicaljson.Value) []byte {
	return signing.SigningBytes(Redact(rules, obj))
}

// referenceHash implements "Calculating the reference hash for an event".
func referenceHash(rules roomversion.RedactionRules, obj canonicaljson.Value) [32]byte {
	return sha256.Sum256(redactedSigningBytes(rules, obj))
}

// ReferenceHash computes the reference hash of any event object.
func ReferenceHash(v roomversion.Version, obj canonicaljson.Value) [32]byte {
	return referenceHash(v.Redaction, obj)
}

// eventIDFromHash is "$" and the reference hash, standard base64 in room
// version 3 (rooms/v3.md), URL-safe from 4 (rooms/fragments/v4-event-ids.md).
func eventIDFromHash(format roomversion.EventFormat, h [32]byte) id.EventID {
	if format == roomversion.FormatV3 {
		return id.EventID("$" + signing.EncodeBase64(h[:]))
	}
	return id.EventID("$" + signing.EncodeURLBase64(h[:]))
}

// RoomIDOfCreate is the room id a room version 12 create event defines:
// its event id with the sigil "!" instead of "$" (rooms/v12.md).
func RoomIDOfCreate(create *Event) id.RoomID {
	h := create.ReferenceHash()
	return id.RoomID("!" + signing.EncodeURLBase64(h[:]))
}

// CheckContentHash compares the content hash in hashes.sha256 with the
// event's actual content hash. On ErrContentHashMismatch the receiver must
// use Redacted() instead of the event.
func (e *Event) CheckContentHash() error {
	h, _ := e.obj.Get("hashes")
	claimed, ok := h.GetString("sha256")
	if !ok {
		return fmt.Errorf("%w: event %s has no sha256 hash", ErrContentHashMismatch, e.eventID)
	}
	want, err := signing.DecodeBase64(claimed)
	if err != nil {
		return fmt.Errorf("%w: event %s: hash is not base64", ErrContentHashMismatch, e.eventID)
	}
	got := ContentHash(e.obj)
	if subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return fmt.Errorf("%w: event %s", ErrContentHashMismatch, e.eventID)
	}
	return nil
}
