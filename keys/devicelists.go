package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// deviceListChanged follows a recorded change of user's devices or
// cross-signing keys at pos: it wakes the syncs of user and of the local
// users who share a room with them, and tells the servers of the remote
// ones (m.device_list_update), so that every tracker re-queries.
func (s *Service) deviceListChanged(ctx context.Context, user id.UserID, pos int64) {
	if pos == 0 {
		return
	}
	servers := s.notifyDeviceList(ctx, user, pos)
	if s.edus != nil && s.isLocal(user) && len(servers) > 0 {
		s.sendDeviceListUpdate(ctx, user, pos, servers)
	}
}

// crossSigningChanged follows a new cross-signing key upload at pos: like
// a device change for local trackers, and m.signing_key_update with the
// public master and self-signing keys for the servers sharing a room (the
// user-signing key stays home).
func (s *Service) crossSigningChanged(ctx context.Context, user id.UserID, pos int64, upload map[string]json.RawMessage) {
	servers := s.notifyDeviceList(ctx, user, pos)
	if s.edus == nil || len(servers) == 0 {
		return
	}
	edu := map[string]any{"user_id": user}
	if k, ok := upload[UsageMaster]; ok {
		edu["master_key"] = k
	}
	if k, ok := upload[UsageSelfSigning]; ok {
		edu["self_signing_key"] = k
	}
	if len(edu) == 1 {
		return // only the user-signing key changed
	}
	content, _ := json.Marshal(edu)
	for _, srv := range servers {
		if err := s.edus.SendEDU(ctx, srv, "m.signing_key_update", content); err != nil {
			s.logger.WarnContext(ctx, "queue m.signing_key_update", slog.String("destination", string(srv)),
				slog.String("error", err.Error()))
		}
	}
}

// notifyDeviceList wakes the syncs of user and of the local users who
// share a room with them, and returns the servers of the remote ones.
func (s *Service) notifyDeviceList(ctx context.Context, user id.UserID, pos int64) []id.ServerName {
	sharing, err := s.store.UsersSharingRoom(ctx, user)
	if err != nil {
		// The change is durable; trackers see it on their next sync.
		s.logger.WarnContext(ctx, "device list change: users sharing a room", slog.String("user_id", string(user)),
			slog.String("error", err.Error()))
	}
	local := []id.UserID{user}
	var servers []id.ServerName
	for _, u := range sharing {
		if s.isLocal(u) {
			local = append(local, u)
		} else if !slices.Contains(servers, u.Server()) {
			servers = append(servers, u.Server())
		}
	}
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamDeviceLists, Pos: pos, Users: local})
	return servers
}

// sendDeviceListUpdate tells servers that user's devices changed: one
// m.device_list_update per device with keys (spec server-server-api
// "Device Management"), stream_id the change's position and prev_id the
// user's change before it, so that a receiver sees gaps and resyncs.
func (s *Service) sendDeviceListUpdate(ctx context.Context, user id.UserID, pos int64, servers []id.ServerName) {
	_, prev, err := s.store.LatestDeviceListPos(ctx, user)
	if err != nil {
		s.logger.WarnContext(ctx, "device list update", slog.String("error", err.Error()))
		return
	}
	devices, err := s.store.DeviceKeys(ctx, []id.UserID{user})
	if err != nil {
		s.logger.WarnContext(ctx, "device list update", slog.String("error", err.Error()))
		return
	}
	prevIDs := []int64{}
	if prev > 0 {
		prevIDs = append(prevIDs, prev)
	}
	for _, dk := range devices {
		content, _ := json.Marshal(map[string]any{"user_id": user, "device_id": dk.Device,
			"device_display_name": dk.DisplayName, "stream_id": pos, "prev_id": prevIDs, "deleted": false,
			"keys": dk.Keys})
		for _, srv := range servers {
			if err := s.edus.SendEDU(ctx, srv, "m.device_list_update", content); err != nil {
				s.logger.WarnContext(ctx, "queue m.device_list_update", slog.String("destination", string(srv)),
					slog.String("error", err.Error()))
			}
		}
	}
}

// Changes handles GET /keys/changes between two sync tokens: users whose
// devices changed in the range and who share a room with the requester,
// plus those who started or stopped sharing one (spec: /keys/changes).
func (s *Service) Changes(ctx context.Context, user id.UserID, from, to syncer.Token) (changed, left []id.UserID, err error) {
	return s.deviceListDelta(ctx, user, from.Pos(syncer.StreamDeviceLists), to.Pos(syncer.StreamDeviceLists),
		from.Pos(syncer.StreamTimeline), to.Pos(syncer.StreamTimeline))
}

// deviceListDelta computes device_lists.changed and .left of a range.
func (s *Service) deviceListDelta(ctx context.Context, user id.UserID, after, upTo, tlAfter, tlUpTo int64) (changed, left []id.UserID, err error) {
	changed = []id.UserID{}
	left = []id.UserID{}
	if upTo > after {
		if changed, err = s.store.ChangedUsers(ctx, user, after, upTo); err != nil {
			return nil, nil, err
		}
	}
	if tlUpTo > tlAfter {
		joined, gone, err := s.store.MembershipDeltas(ctx, user, tlAfter, tlUpTo)
		if err != nil {
			return nil, nil, err
		}
		for _, u := range joined {
			if u != user && !slices.Contains(changed, u) {
				changed = append(changed, u)
			}
		}
		for _, u := range gone {
			if u != user && !slices.Contains(changed, u) {
				left = append(left, u)
			}
		}
	}
	slices.Sort(changed)
	slices.Sort(left)
	return changed, left, nil
}

// DeviceListSource is the device lists stream of /sync: device_lists
// changed/left on incremental syncs, and on every sync the syncing
// device's one-time key counts and unused fallback key types.
type DeviceListSource struct{ Keys *Service }

var _ syncer.StreamSource = DeviceListSource{}

// Stream implements syncer.StreamSource.
func (DeviceListSource) Stream() syncer.Stream { return syncer.StreamDeviceLists }

// CurrentPos implements syncer.StreamSource.
func (d DeviceListSource) CurrentPos(ctx context.Context) (int64, error) {
	return d.Keys.store.DeviceListPos(ctx)
}

// Fill implements syncer.StreamSource.
func (d DeviceListSource) Fill(ctx context.Context, q syncer.StreamQuery, resp *syncer.Response) error {
	st := d.Keys.store
	counts, types, err := st.KeyCounts(ctx, q.User, q.Device)
	if err != nil {
		return err
	}
	resp.DeviceOneTimeKeysCount, resp.DeviceUnusedFallbackKeyTypes = counts, types
	// An initial sync has no device_lists: the client queries every
	// user it tracks anyway (spec: "Tracking the device list for a user").
	if q.NoSince {
		return nil
	}
	changed, left, err := d.Keys.deviceListDelta(ctx, q.User, q.Since, q.Pos, q.TimelineSince, q.TimelinePos)
	if err != nil {
		return err
	}
	resp.DeviceLists.Changed, resp.DeviceLists.Left = changed, left
	return nil
}

// DevicesDeleted follows the deletion of user's devices (nil: all of
// them, a deactivation). Their keys went with them, which recorded a
// device list change (sql/0011's trigger, whatever path deleted them);
// this wakes the trackers' syncs and tells remote servers the devices are
// gone (m.device_list_update with deleted: true).
func (s *Service) DevicesDeleted(ctx context.Context, user id.UserID, devices []id.DeviceID) {
	latest, prev, err := s.store.LatestDeviceListPos(ctx, user)
	if err != nil || latest == 0 {
		if err != nil {
			s.logger.WarnContext(ctx, "devices deleted: device list position", slog.String("error", err.Error()))
		}
		return
	}
	servers := s.notifyDeviceList(ctx, user, latest)
	if s.edus == nil || len(servers) == 0 {
		return
	}
	prevIDs := []int64{}
	if prev > 0 {
		prevIDs = append(prevIDs, prev)
	}
	for _, d := range devices {
		content, _ := json.Marshal(map[string]any{"user_id": user, "device_id": d, "deleted": true,
			"stream_id": latest, "prev_id": prevIDs})
		for _, srv := range servers {
			if err := s.edus.SendEDU(ctx, srv, "m.device_list_update", content); err != nil {
				s.logger.WarnContext(ctx, "queue m.device_list_update", slog.String("destination", string(srv)),
					slog.String("error", err.Error()))
			}
		}
	}
}

// DeviceRenamed follows a change of a device's display name, which
// /keys/query shows (unsigned.device_display_name): when the device has
// keys, its trackers hear of it like of any device change.
func (s *Service) DeviceRenamed(ctx context.Context, user id.UserID, device id.DeviceID) {
	devices, err := s.store.DeviceKeys(ctx, []id.UserID{user})
	if err != nil {
		s.logger.WarnContext(ctx, "device renamed: device keys", slog.String("error", err.Error()))
		return
	}
	if !slices.ContainsFunc(devices, func(d DeviceKeys) bool { return d.Device == device }) {
		return
	}
	pos, err := s.store.MarkDeviceListChanged(ctx, user)
	if err != nil {
		s.logger.WarnContext(ctx, "device renamed: device list change", slog.String("error", err.Error()))
		return
	}
	s.deviceListChanged(ctx, user, pos)
}
