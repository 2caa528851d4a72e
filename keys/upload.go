package keys

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// UploadRequest is the body of POST /keys/upload.
type UploadRequest struct {
	DeviceKeys   json.RawMessage            `json:"device_keys,omitempty"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys,omitempty"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys,omitempty"`
}

// maxKeysPerUpload bounds one upload's one-time keys (clients send
// dozens; a flood is a mistake or abuse).
const maxKeysPerUpload = 1000

// Upload handles POST /keys/upload for the requester's device: it checks
// that the device keys are the device's own and self-signed, and that
// signed one-time and fallback keys carry the device's valid signature,
// then stores them and answers the device's one-time key counts.
func (s *Service) Upload(ctx context.Context, user id.UserID, device id.DeviceID, req UploadRequest) (map[string]int, error) {
	var deviceKeys json.RawMessage
	var ed25519Key ed25519.PublicKey
	if len(req.DeviceKeys) > 0 && string(req.DeviceKeys) != "null" {
		obj, pub, err := checkDeviceKeys(req.DeviceKeys, user, device)
		if err != nil {
			return nil, err
		}
		if err := s.checkNotCrossSigningID(ctx, user, device); err != nil {
			return nil, err
		}
		deviceKeys, ed25519Key = canonicaljson.Encode(obj), pub
	}
	if len(req.OneTimeKeys)+len(req.FallbackKeys) > maxKeysPerUpload {
		return nil, mxerr.TooLarge.WithStatus(400).Msgf("at most %d keys per upload", maxKeysPerUpload)
	}
	if ed25519Key == nil && len(req.OneTimeKeys)+len(req.FallbackKeys) > 0 {
		// Signed keys verify against the device's stored identity key.
		stored, err := s.store.DeviceKeys(ctx, []id.UserID{user})
		if err != nil {
			return nil, err
		}
		for _, dk := range stored {
			if dk.Device == device {
				if obj, err := canonicaljson.ParseLenient(dk.Keys); err == nil {
					ed25519Key = deviceEd25519(obj, device)
				}
			}
		}
	}
	otks, err := parseOneTimeKeys(req.OneTimeKeys, user, device, ed25519Key, "one_time_keys")
	if err != nil {
		return nil, err
	}
	fallbacks, err := parseOneTimeKeys(req.FallbackKeys, user, device, ed25519Key, "fallback_keys")
	if err != nil {
		return nil, err
	}
	if err := oneFallbackPerAlgorithm(fallbacks); err != nil {
		return nil, err
	}
	pos, err := s.store.UploadKeys(ctx, user, device, deviceKeys, otks, fallbacks)
	if errors.Is(err, ErrKeyConflict) {
		return nil, mxerr.InvalidParam.Msg("a one-time key with this id was already uploaded with other contents")
	}
	if err != nil {
		return nil, err
	}
	if pos > 0 {
		s.deviceListChanged(ctx, user, pos)
	}
	counts, _, err := s.store.KeyCounts(ctx, user, device)
	return counts, err
}

// checkDeviceKeys validates an uploaded device_keys object: the
// requester's own user and device ids, algorithms, keys, and the device's
// ed25519 self-signature (spec: "Device keys" — clients verify it, so a
// server that stored a broken one would publish an unusable device).
func checkDeviceKeys(raw json.RawMessage, user id.UserID, device id.DeviceID) (canonicaljson.Value, ed25519.PublicKey, error) {
	obj, err := canonicaljson.ParseLenient(raw)
	if err != nil || obj.Kind() != canonicaljson.Object {
		return obj, nil, mxerr.BadJSON.Msg("device_keys must be an object")
	}
	if u, _ := obj.GetString("user_id"); u != string(user) {
		return obj, nil, mxerr.InvalidParam.Msg("device_keys.user_id is not the authenticated user")
	}
	if d, _ := obj.GetString("device_id"); d != string(device) {
		return obj, nil, mxerr.InvalidParam.Msg("device_keys.device_id is not the authenticated device")
	}
	algs, ok := obj.Get("algorithms")
	if !ok || algs.Kind() != canonicaljson.Array {
		return obj, nil, mxerr.BadJSON.Msg("device_keys.algorithms must be an array of strings")
	}
	for _, a := range algs.Array() {
		if a.Kind() != canonicaljson.String {
			return obj, nil, mxerr.BadJSON.Msg("device_keys.algorithms must be an array of strings")
		}
	}
	keys, ok := obj.Get("keys")
	if !ok || keys.Kind() != canonicaljson.Object {
		return obj, nil, mxerr.BadJSON.Msg("device_keys.keys must be an object")
	}
	for _, m := range keys.Members() {
		if m.Value.Kind() != canonicaljson.String || !strings.Contains(m.Key, ":") {
			return obj, nil, mxerr.BadJSON.Msg("device_keys.keys maps algorithm:device_id to a key string")
		}
	}
	pub := deviceEd25519(obj, device)
	if pub == nil {
		return obj, nil, mxerr.InvalidParam.Msgf("device_keys.keys lacks a valid ed25519:%s key", device)
	}
	if err := signing.Verify(obj, string(user), "ed25519:"+string(device), pub); err != nil {
		return obj, nil, mxerr.InvalidParam.Msg("device_keys is not correctly signed by the device's ed25519 key")
	}
	return obj, pub, nil
}

// deviceEd25519 is the device's ed25519 identity key in a device_keys
// object, nil when absent or malformed.
func deviceEd25519(obj canonicaljson.Value, device id.DeviceID) ed25519.PublicKey {
	keys, _ := obj.Get("keys")
	s, ok := keys.GetString("ed25519:" + string(device))
	if !ok {
		return nil
	}
	pub, err := signing.ParsePublicKey(s)
	if err != nil {
		return nil
	}
	return pub
}

// parseOneTimeKeys validates one_time_keys or fallback_keys: names
// "algorithm:key_id", values a key string or a signed key object whose
// signature by the device must verify when its identity key is known.
func parseOneTimeKeys(in map[string]json.RawMessage, user id.UserID, device id.DeviceID, pub ed25519.PublicKey, field string) ([]OneTimeKey, error) {
	out := make([]OneTimeKey, 0, len(in))
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		alg, keyID, ok := strings.Cut(name, ":")
		if !ok || alg == "" || keyID == "" {
			return nil, mxerr.BadJSON.Msgf("%s: %q is not algorithm:key_id", field, name)
		}
		v, err := canonicaljson.ParseLenient(in[name])
		if err != nil {
			return nil, mxerr.BadJSON.Msgf("%s.%s is not JSON", field, name)
		}
		switch v.Kind() {
		case canonicaljson.String:
		case canonicaljson.Object:
			if k, ok := v.GetString("key"); !ok || k == "" {
				return nil, mxerr.BadJSON.Msgf("%s.%s: key must be a string", field, name)
			}
			if err := checkKeySignature(v, user, device, pub); err != nil {
				return nil, mxerr.InvalidParam.Msgf("%s.%s: %v", field, name, err)
			}
		default:
			return nil, mxerr.BadJSON.Msgf("%s.%s must be a key string or a signed key object", field, name)
		}
		out = append(out, OneTimeKey{Algorithm: alg, KeyID: keyID, Key: canonicaljson.Encode(v)})
	}
	return out, nil
}

// checkKeySignature checks a signed key object's signature by the device.
func checkKeySignature(v canonicaljson.Value, user id.UserID, device id.DeviceID, pub ed25519.PublicKey) error {
	sigs, ok := v.Get("signatures")
	if !ok || sigs.Kind() != canonicaljson.Object {
		return errors.New("signatures must be an object")
	}
	mine, ok := sigs.Get(string(user))
	if !ok || mine.Kind() != canonicaljson.Object {
		return fmt.Errorf("not signed by %s", user)
	}
	keyID := "ed25519:" + string(device)
	if _, ok := mine.GetString(keyID); !ok {
		return fmt.Errorf("not signed by %s", keyID)
	}
	if pub == nil {
		// No identity key known yet to check against: stored as sent.
		return nil
	}
	if err := signing.Verify(v, string(user), keyID, pub); err != nil {
		return errors.New("the device's signature does not verify")
	}
	return nil
}

// oneFallbackPerAlgorithm: the server keeps one fallback key per
// algorithm (spec: /keys/upload fallback_keys).
func oneFallbackPerAlgorithm(keys []OneTimeKey) error {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Algorithm] {
			return mxerr.InvalidParam.Msgf("fallback_keys: more than one %s key", k.Algorithm)
		}
		seen[k.Algorithm] = true
	}
	return nil
}

// checkNotCrossSigningID refuses a device id that is one of the user's
// cross-signing public keys: device key ids (ed25519:DEVICE_ID) and
// cross-signing key ids (ed25519:PUBLIC_KEY) share a namespace, and the
// spec says servers MUST NOT let them collide ("Cross-signing").
func (s *Service) checkNotCrossSigningID(ctx context.Context, user id.UserID, device id.DeviceID) error {
	cross, err := s.store.CrossSigningKeys(ctx, []id.UserID{user})
	if err != nil {
		return err
	}
	for _, raw := range cross[user] {
		if obj, err := canonicaljson.ParseLenient(raw); err == nil && crossSigningPublicKey(obj) == string(device) {
			return mxerr.InvalidParam.Msg("the device id is one of the user's cross-signing keys")
		}
	}
	return nil
}
