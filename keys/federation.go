package keys

import (
	"context"
	"encoding/json"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// HandleDeviceListUpdate takes an inbound m.device_list_update of origin
// (spec server-server-api "Device Management"): the cached list of the
// user, if any, follows it (applied when its prev_id chain continues the
// list, resynced with GET /user/devices on a gap), then a change of the
// user's device list is recorded so that local users who share a room see
// them in device_lists.changed and query again — the cache already
// answers with the update.
func (s *Service) HandleDeviceListUpdate(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var u deviceListUpdate
	if err := json.Unmarshal(content, &u); err != nil {
		return mxerr.BadJSON.Msg("m.device_list_update: malformed content")
	}
	if err := s.checkOrigin(origin, u.UserID, "m.device_list_update"); err != nil {
		return err
	}
	if u.DeviceID == "" {
		return mxerr.BadJSON.Msg("m.device_list_update: device_id missing")
	}
	s.applyDeviceListUpdate(ctx, u)
	return s.remoteUserChanged(ctx, u.UserID)
}

// HandleSigningKeyUpdate takes an inbound m.signing_key_update of origin:
// the cached list takes the new keys and the user's trackers query again.
func (s *Service) HandleSigningKeyUpdate(ctx context.Context, origin id.ServerName, content json.RawMessage) error {
	var edu struct {
		UserID         id.UserID       `json:"user_id"`
		MasterKey      json.RawMessage `json:"master_key"`
		SelfSigningKey json.RawMessage `json:"self_signing_key"`
	}
	if err := json.Unmarshal(content, &edu); err != nil {
		return mxerr.BadJSON.Msg("m.signing_key_update: malformed content")
	}
	if err := s.checkOrigin(origin, edu.UserID, "m.signing_key_update"); err != nil {
		return err
	}
	s.applySigningKeyUpdate(ctx, edu.UserID, edu.MasterKey, edu.SelfSigningKey)
	return s.remoteUserChanged(ctx, edu.UserID)
}

func (s *Service) checkOrigin(origin id.ServerName, user id.UserID, eduType string) error {
	if _, err := id.ParseUserID(string(user)); err != nil || user.Server() != origin {
		return mxerr.Forbidden.Msgf("%s: the user is not a user of the origin", eduType)
	}
	return nil
}

func (s *Service) remoteUserChanged(ctx context.Context, user id.UserID) error {
	pos, err := s.store.MarkDeviceListChanged(ctx, user)
	if err != nil {
		return err
	}
	s.deviceListChanged(ctx, user, pos)
	return nil
}

// UserDevices is the body of GET /_matrix/federation/v1/user/devices/{userId}
// for a local user: every device (with its keys when it uploaded some,
// signatures merged),
// stream_id the head of the user's m.device_list_update chain, and the
// cross-signing master and self-signing keys.
func (s *Service) UserDevices(ctx context.Context, user id.UserID) (json.RawMessage, error) {
	if !s.isLocal(user) {
		return nil, mxerr.InvalidParam.Msg("not a user of this server")
	}
	// The head of the user's m.device_list_update chain, read before the
	// devices: a change committed in between is then in the answer and
	// its EDU (of a later stream_id) applies on top of it again, whereas
	// the other order could pair an old list with a stream_id that makes
	// the receiver skip the change's EDU.
	latest, err := s.store.OutboundHead(ctx, user)
	if err != nil {
		return nil, err
	}
	resp, err := s.queryLocal(ctx, map[id.UserID][]id.DeviceID{user: nil}, "")
	if err != nil {
		return nil, err
	}
	type device struct {
		DeviceID    id.DeviceID     `json:"device_id"`
		DisplayName string          `json:"device_display_name,omitempty"`
		Keys        json.RawMessage `json:"keys,omitempty"`
	}
	all, err := s.store.AllDevices(ctx, user)
	if err != nil {
		return nil, err
	}
	devices := make([]device, 0, len(all))
	for _, d := range all {
		// Keys with the signatures others uploaded, as /keys/query has them.
		devices = append(devices, device{DeviceID: d.Device, DisplayName: d.DisplayName, Keys: resp.DeviceKeys[user][d.Device]})
	}
	body := map[string]any{"user_id": user, "stream_id": latest, "devices": devices}
	if k, ok := resp.MasterKeys[user]; ok {
		body["master_key"] = k
	}
	if k, ok := resp.SelfSigningKeys[user]; ok {
		body["self_signing_key"] = k
	}
	return json.Marshal(body)
}

// FederationQueryKeys is the body of POST /_matrix/federation/v1/user/keys/query:
// the local users' device keys and master and self-signing keys (never a
// user-signing key); users of other servers are ignored.
func (s *Service) FederationQueryKeys(ctx context.Context, deviceKeys map[id.UserID][]id.DeviceID) (json.RawMessage, error) {
	local := map[id.UserID][]id.DeviceID{}
	for u, d := range deviceKeys {
		if s.isLocal(u) {
			local[u] = d
		}
	}
	resp, err := s.queryLocal(ctx, local, "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"device_keys": resp.DeviceKeys, "master_keys": resp.MasterKeys,
		"self_signing_keys": resp.SelfSigningKeys})
}

// FederationClaimKeys is the body of POST /_matrix/federation/v1/user/keys/claim
// for the local devices asked for.
func (s *Service) FederationClaimKeys(ctx context.Context, oneTimeKeys map[id.UserID]map[id.DeviceID]string) (json.RawMessage, error) {
	var reqs []ClaimRequest
	for u, devs := range oneTimeKeys {
		if !s.isLocal(u) {
			continue
		}
		for d, alg := range devs {
			reqs = append(reqs, ClaimRequest{User: u, Device: d, Algorithm: alg})
		}
	}
	claimed, err := s.store.ClaimKeys(ctx, reqs)
	if err != nil {
		return nil, err
	}
	resp := &ClaimResponse{OneTimeKeys: map[id.UserID]map[id.DeviceID]map[string]json.RawMessage{}}
	for _, c := range claimed {
		addClaimed(resp, c.User, c.Device, c.KeyID, c.Key)
	}
	return json.Marshal(map[string]any{"one_time_keys": resp.OneTimeKeys})
}
