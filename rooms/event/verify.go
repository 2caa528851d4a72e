package event

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// KeyLookup returns server's verification key keyID. atTS is the
// origin_server_ts the key must be valid at (room versions 5 and later,
// rooms/fragments/v5-signing-requirements.md), or 0 when the room version
// does not enforce key validity. An error means the key is unknown or
// expired; Verify then skips that signature, as the spec says.
type KeyLookup func(ctx context.Context, server id.ServerName, keyID string, atTS int64) (ed25519.PublicKey, error)

// RequiredSigners lists the servers whose signature the event must carry
// (server-server API, "Validating hashes and signatures on received
// events"): the sender's server; in room versions 1 and 2 also the server
// of the event id; for a restricted join (v8+) the server of the user in
// join_authorised_via_users_server (rooms/fragments/v8-auth-rules.md, rule
// 4.2.1). A third-party invite need not be signed by the sender's server:
// the server that relays it may be another; see Verify.
func (e *Event) RequiredSigners() []id.ServerName {
	var servers []id.ServerName
	add := func(s id.ServerName) {
		if s != "" && !slices.Contains(servers, s) {
			servers = append(servers, s)
		}
	}
	if !e.isThirdPartyInvite() {
		add(e.sender.Server())
	}
	if e.version.EventFormat == roomversion.FormatV1 {
		_, server, _ := strings.Cut(string(e.eventID), ":")
		add(id.ServerName(server))
	}
	if e.version.RestrictedJoins && e.Membership() == "join" {
		if via, ok := e.content.GetString("join_authorised_via_users_server"); ok {
			if uid, err := id.ParseUserID(via); err == nil {
				add(uid.Server())
			}
		}
	}
	return servers
}

func (e *Event) isThirdPartyInvite() bool {
	return e.Membership() == "invite" && e.content.Has("third_party_invite")
}

// Verify checks an event received from another server: every required
// signer's signatures on the redacted event, then the content hash.
//
// ErrBadSignature or ErrMissingSignature mean the event must be dropped;
// ErrContentHashMismatch means its redacted form must be used instead (see
// VerifyOrRedact). Signatures by keys the lookup cannot find are skipped,
// but each required server needs at least one valid signature; a
// third-party invite, which has no required signer, needs at least one
// valid signature by any server.
func Verify(ctx context.Context, e *Event, lookup KeyLookup) error {
	msg := redactedSigningBytes(e.version.Redaction, e.obj)
	var atTS int64
	if e.version.EnforceKeyValidity {
		atTS = e.ts
	}
	signers := e.RequiredSigners()
	for _, server := range signers {
		if _, err := verifyServer(ctx, e, msg, server, atTS, lookup); err != nil {
			return err
		}
	}
	if len(signers) == 0 {
		valid := 0
		for server := range e.Signatures() {
			n, err := verifyServer(ctx, e, msg, server, atTS, lookup)
			if err != nil && !errors.Is(err, ErrMissingSignature) {
				return err
			}
			valid += n
		}
		if valid == 0 {
			return fmt.Errorf("%w: event %s has no valid signature", ErrMissingSignature, e.eventID)
		}
	}
	return e.CheckContentHash()
}

// verifyServer checks server's ed25519 signatures on msg and returns how
// many verified.
func verifyServer(ctx context.Context, e *Event, msg []byte, server id.ServerName, atTS int64, lookup KeyLookup) (int, error) {
	keyIDs := signing.KeyIDs(e.obj, string(server))
	var skipped []error
	valid := 0
	for _, keyID := range keyIDs {
		pub, err := lookup(ctx, server, keyID, atTS)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %s of %s: %w", keyID, server, err))
			continue
		}
		sig, _ := signing.Signature(e.obj, string(server), keyID)
		if err := signing.VerifyBytes(msg, sig, string(server), keyID, pub); err != nil {
			return valid, fmt.Errorf("%w: event %s: %w", ErrBadSignature, e.eventID, err)
		}
		valid++
	}
	if valid == 0 {
		if len(skipped) > 0 {
			return 0, fmt.Errorf("%w: event %s by %s: %w", ErrMissingSignature, e.eventID, server, errors.Join(skipped...))
		}
		return 0, fmt.Errorf("%w: event %s has no signature by %s", ErrMissingSignature, e.eventID, server)
	}
	return valid, nil
}

// VerifyOrRedact runs Verify and returns the event to use: e itself, or its
// redacted form (redacted is then true) when only the content hash failed.
// An error means the event must be dropped.
func VerifyOrRedact(ctx context.Context, e *Event, lookup KeyLookup) (ev *Event, redacted bool, err error) {
	err = Verify(ctx, e, lookup)
	switch {
	case err == nil:
		return e, false, nil
	case errors.Is(err, ErrContentHashMismatch):
		return e.Redacted(), true, nil
	default:
		return nil, false, err
	}
}
