package keys

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

// Cross-signing key usages (spec: "Cross-signing").
const (
	UsageMaster      = "master"
	UsageSelfSigning = "self_signing"
	UsageUserSigning = "user_signing"
)

// errInvalidSignature is M_INVALID_SIGNATURE (spec:
// /keys/signatures/upload failures, /keys/device_signing/upload).
var errInvalidSignature = &mxerr.Error{Code: "M_INVALID_SIGNATURE", Status: 400, Message: "Invalid signature"}

// CrossSigningUpload is the body of POST /keys/device_signing/upload.
type CrossSigningUpload struct {
	MasterKey      json.RawMessage `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage `json:"self_signing_key,omitempty"`
	UserSigningKey json.RawMessage `json:"user_signing_key,omitempty"`
	Auth           json.RawMessage `json:"auth,omitempty"`
}

// UploadCrossSigning handles POST /keys/device_signing/upload. The keys
// must be the user's, each with its usage, and the self-signing and
// user-signing keys signed by the master key (uploaded now or stored).
// User-interactive auth is required unless this is the user's first
// master key or the upload changes nothing (spec: the server may skip it
// then, which lets a new account bootstrap cross-signing).
func (s *Service) UploadCrossSigning(ctx context.Context, user id.UserID, device id.DeviceID, req CrossSigningUpload) error {
	stored, err := s.store.CrossSigningKeys(ctx, []id.UserID{user})
	if err != nil {
		return err
	}
	current := stored[user]
	upload := map[string]json.RawMessage{}
	objs := map[string]canonicaljson.Value{}
	for usage, raw := range map[string]json.RawMessage{UsageMaster: req.MasterKey,
		UsageSelfSigning: req.SelfSigningKey, UsageUserSigning: req.UserSigningKey} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		obj, err := checkCrossSigningKey(raw, user, usage)
		if err != nil {
			return err
		}
		objs[usage] = obj
		upload[usage] = canonicaljson.Encode(obj)
	}
	if len(upload) == 0 {
		return mxerr.MissingParam.Msg("no cross-signing key in the upload")
	}
	// A cross-signing key must not share its key id with a device (spec
	// "Cross-signing": the two share the ed25519:<id> namespace).
	devices, err := s.store.AllDevices(ctx, user)
	if err != nil {
		return err
	}
	for usage, obj := range objs {
		pub := crossSigningPublicKey(obj)
		for _, d := range devices {
			if string(d.Device) == pub {
				return mxerr.InvalidParam.Msgf("the %s key is the id of one of the user's devices", usage)
			}
		}
	}
	master, ok := objs[UsageMaster]
	if !ok {
		raw, have := current[UsageMaster]
		if !have {
			return mxerr.InvalidParam.Msg("a master key must be uploaded first")
		}
		if master, err = canonicaljson.ParseLenient(raw); err != nil {
			return err
		}
	}
	masterPub := crossSigningPublicKey(master)
	pub, err := signing.ParsePublicKey(masterPub)
	if err != nil {
		return mxerr.InvalidParam.Msg("the master key is not an ed25519 key")
	}
	for _, usage := range []string{UsageSelfSigning, UsageUserSigning} {
		obj, ok := objs[usage]
		if !ok {
			continue
		}
		if err := signing.Verify(obj, string(user), "ed25519:"+masterPub, pub); err != nil {
			return errInvalidSignature.Msgf("the %s key is not signed by the master key", usage)
		}
	}
	unchanged := true
	for usage, raw := range upload {
		if old, ok := current[usage]; !ok || !sameJSON(old, raw) {
			unchanged = false
		}
	}
	_, hasMaster := current[UsageMaster]
	var finish func(context.Context) error
	if hasMaster && !unchanged {
		if s.uia == nil {
			return mxerr.Forbidden.Msg("cross-signing keys cannot be replaced on this server")
		}
		if finish, err = s.uia.AuthorizeCrossSigning(ctx, user, device, req.Auth); err != nil {
			return err
		}
	}
	if !unchanged {
		pos, err := s.store.PutCrossSigningKeys(ctx, user, upload)
		if err != nil {
			return err
		}
		s.deviceListChanged(ctx, user, pos)
	}
	if finish != nil {
		return finish(ctx)
	}
	return nil
}

// checkCrossSigningKey validates a cross-signing key object: the user's,
// with the usage, and exactly one ed25519 key named by itself.
func checkCrossSigningKey(raw json.RawMessage, user id.UserID, usage string) (canonicaljson.Value, error) {
	obj, err := canonicaljson.ParseLenient(raw)
	if err != nil || obj.Kind() != canonicaljson.Object {
		return obj, mxerr.BadJSON.Msgf("%s_key must be an object", usage)
	}
	if u, _ := obj.GetString("user_id"); u != string(user) {
		return obj, mxerr.InvalidParam.Msgf("%s_key.user_id is not the authenticated user", usage)
	}
	usages, _ := obj.Get("usage")
	found := false
	for _, u := range usages.Array() {
		if s, _ := u.Str(); s == usage {
			found = true
		}
	}
	if !found {
		return obj, mxerr.InvalidParam.Msgf("%s_key.usage must contain %q", usage, usage)
	}
	if crossSigningPublicKey(obj) == "" {
		return obj, mxerr.InvalidParam.Msgf("%s_key.keys must hold one ed25519 key", usage)
	}
	return obj, nil
}

// crossSigningPublicKey is the key of a cross-signing key object, "" when
// it has not exactly one "ed25519:<key>": "<key>" entry.
func crossSigningPublicKey(obj canonicaljson.Value) string {
	keys, _ := obj.Get("keys")
	ms := keys.Members()
	if len(ms) != 1 {
		return ""
	}
	name, _ := strings.CutPrefix(ms[0].Key, "ed25519:")
	v, ok := ms[0].Value.Str()
	if !ok || name != v || name == ms[0].Key {
		return ""
	}
	if _, err := signing.ParsePublicKey(v); err != nil {
		return ""
	}
	return v
}

func sameJSON(a, b []byte) bool {
	va, err1 := canonicaljson.ParseLenient(a)
	vb, err2 := canonicaljson.ParseLenient(b)
	return err1 == nil && err2 == nil && canonicaljson.Equal(va, vb)
}

func signingAdd(obj canonicaljson.Value, sg Signature) (canonicaljson.Value, error) {
	return signing.AddSignature(obj, string(sg.Signer), sg.SignerKeyID, sg.Signature)
}

// SignaturesResponse is the body of POST /keys/signatures/upload.
type SignaturesResponse struct {
	Failures map[id.UserID]map[string]map[string]any `json:"failures"`
}

// UploadSignatures handles POST /keys/signatures/upload: signatures by the
// uploader's keys of their own devices (by the self-signing key), of their
// own master key (by a device), and of other users' master keys (by the
// user-signing key). Each signed object must be the stored one and its
// signature must verify; what fails is listed per key, the rest stored.
func (s *Service) UploadSignatures(ctx context.Context, user id.UserID, body map[id.UserID]map[string]json.RawMessage) (*SignaturesResponse, error) {
	resp := &SignaturesResponse{Failures: map[id.UserID]map[string]map[string]any{}}
	fail := func(u id.UserID, key string, e *mxerr.Error) {
		if resp.Failures[u] == nil {
			resp.Failures[u] = map[string]map[string]any{}
		}
		resp.Failures[u][key] = map[string]any{"errcode": e.Code, "error": e.Message}
	}
	users := []id.UserID{user}
	for u := range body {
		if u != user {
			users = append(users, u)
		}
	}
	cross, err := s.store.CrossSigningKeys(ctx, users)
	if err != nil {
		return nil, err
	}
	devices, err := s.store.DeviceKeys(ctx, []id.UserID{user})
	if err != nil {
		return nil, err
	}
	mine := cross[user]
	pubOf := func(raw json.RawMessage) string {
		obj, err := canonicaljson.ParseLenient(raw)
		if err != nil {
			return ""
		}
		return crossSigningPublicKey(obj)
	}
	var sigs []Signature
	for target, keys := range body {
		for keyID, raw := range keys {
			obj, err := canonicaljson.ParseLenient(raw)
			if err != nil || obj.Kind() != canonicaljson.Object {
				fail(target, keyID, mxerr.BadJSON.Msg("not a JSON object"))
				continue
			}
			var signerPub string // the key the signature must be by
			var storedObj json.RawMessage
			switch {
			case target == user && keyID == pubOf(mine[UsageMaster]):
				// A device signs its user's master key.
				storedObj = mine[UsageMaster]
			case target == user:
				for _, dk := range devices {
					if string(dk.Device) == keyID {
						storedObj = dk.Keys
					}
				}
				signerPub = pubOf(mine[UsageSelfSigning])
			default:
				m, ok := cross[target][UsageMaster]
				if !ok && !s.isLocal(target) {
					// A remote user's master key, as their server (or
					// the cache of their device list) has it.
					m = s.remoteMasterKey(ctx, user, target)
				}
				if m != nil && pubOf(m) == keyID {
					storedObj = m
				}
				signerPub = pubOf(mine[UsageUserSigning])
			}
			if storedObj == nil {
				fail(target, keyID, mxerr.NotFound.Msg("Unknown key"))
				continue
			}
			if !sameSigned(storedObj, obj) {
				fail(target, keyID, errInvalidSignature.Msg("The signed object is not the stored key"))
				continue
			}
			sg, ok := s.verifyUploadedSignature(obj, user, signerPub, devices)
			if !ok {
				fail(target, keyID, errInvalidSignature.Msg("Invalid signature"))
				continue
			}
			sg.TargetUser, sg.TargetKey = target, keyID
			sigs = append(sigs, sg)
		}
	}
	if len(sigs) > 0 {
		changed, err := s.store.PutSignatures(ctx, sigs)
		if err != nil {
			return nil, err
		}
		for u, pos := range changed {
			s.deviceListChanged(ctx, u, pos)
		}
	}
	return resp, nil
}

// verifyUploadedSignature finds the uploader's signature on obj by the key
// signerPub (a cross-signing key) or, when signerPub is "", by one of the
// uploader's devices, and checks it.
func (s *Service) verifyUploadedSignature(obj canonicaljson.Value, user id.UserID, signerPub string, devices []DeviceKeys) (Signature, bool) {
	candidates := map[string]ed25519.PublicKey{}
	if signerPub != "" {
		if pub, err := signing.ParsePublicKey(signerPub); err == nil {
			candidates["ed25519:"+signerPub] = pub
		}
	} else {
		for _, dk := range devices {
			if dobj, err := canonicaljson.ParseLenient(dk.Keys); err == nil {
				if pub := deviceEd25519(dobj, dk.Device); pub != nil {
					candidates["ed25519:"+string(dk.Device)] = pub
				}
			}
		}
	}
	for keyID, pub := range candidates {
		sig, ok := signing.Signature(obj, string(user), keyID)
		if !ok {
			continue
		}
		if signing.Verify(obj, string(user), keyID, pub) == nil {
			return Signature{Signer: user, SignerKeyID: keyID, Signature: sig}, true
		}
	}
	return Signature{}, false
}

// sameSigned reports whether two signed objects are the same but for
// their signatures and unsigned data.
func sameSigned(stored json.RawMessage, obj canonicaljson.Value) bool {
	a, err := canonicaljson.ParseLenient(stored)
	if err != nil {
		return false
	}
	return string(signing.SigningBytes(a)) == string(signing.SigningBytes(obj))
}

// remoteMasterKey returns a remote user's master key as /keys/query
// answers it to user (nil when there is none or the server is away).
func (s *Service) remoteMasterKey(ctx context.Context, user, target id.UserID) json.RawMessage {
	if _, err := id.ParseUserID(string(target)); err != nil {
		return nil
	}
	resp, err := s.Query(ctx, user, map[id.UserID][]id.DeviceID{target: {}})
	if err != nil {
		return nil
	}
	return resp.MasterKeys[target]
}
