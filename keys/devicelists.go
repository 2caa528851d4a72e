package keys

import (
	"context"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// deviceListChanged follows a recorded change of user's devices or
// cross-signing keys at pos: it wakes the syncs of user and of the local
// users who share a room with them and, for a local user, the relay of
// the EDUs the change wrote to the outbox (keys/outbox.go) for the
// servers of the remote ones, so that every tracker re-queries.
func (s *Service) deviceListChanged(ctx context.Context, user id.UserID, pos int64) {
	if pos == 0 {
		return
	}
	s.notifyDeviceList(ctx, user, pos)
	if s.isLocal(user) {
		s.kickOutbox()
	}
}

// notifyDeviceList wakes the syncs of user and of the local users who
// share a room with them.
func (s *Service) notifyDeviceList(ctx context.Context, user id.UserID, pos int64) {
	sharing, err := s.store.UsersSharingRoom(ctx, user)
	if err != nil {
		// The change is durable; trackers see it on their next sync.
		s.logger.WarnContext(ctx, "device list change: users sharing a room", slog.String("user_id", string(user)),
			slog.String("error", err.Error()))
	}
	local := []id.UserID{user}
	for _, u := range sharing {
		if s.isLocal(u) {
			local = append(local, u)
		}
	}
	s.notifier.Notify(syncer.Change{Stream: syncer.StreamDeviceLists, Pos: pos, Users: local})
}

// Changes handles GET /keys/changes between two sync tokens: users whose
// devices changed in the range and who share a room with the requester,
// plus those who started or stopped sharing one (spec: /keys/changes).
func (s *Service) Changes(ctx context.Context, user id.UserID, from, to syncer.Token) (changed, left []id.UserID, err error) {
	return s.deviceListDelta(ctx, user, from.Pos(syncer.StreamDeviceLists), to.Pos(syncer.StreamDeviceLists),
		from.Pos(syncer.StreamTimeline), to.Pos(syncer.StreamTimeline), false)
}

// deviceListDelta computes device_lists.changed and .left of a range.
// membersQuiet: the caller knows no membership that matters changed in
// the timeline range (syncer.StreamQuery.MembersQuiet), so there is no
// one who started or stopped sharing a room to read.
func (s *Service) deviceListDelta(ctx context.Context, user id.UserID, after, upTo, tlAfter, tlUpTo int64, membersQuiet bool) (changed, left []id.UserID, err error) {
	changed = []id.UserID{}
	left = []id.UserID{}
	if upTo > after {
		if changed, err = s.store.ChangedUsers(ctx, user, after, upTo); err != nil {
			return nil, nil, err
		}
	}
	if tlUpTo > tlAfter && !membersQuiet {
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

var _ syncer.CounterSource = DeviceListSource{}

// Stream implements syncer.StreamSource.
func (DeviceListSource) Stream() syncer.Stream { return syncer.StreamDeviceLists }

// CounterName implements syncer.CounterSource.
func (DeviceListSource) CounterName() string { return "device_lists" }

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
	changed, left, err := d.Keys.deviceListDelta(ctx, q.User, q.Since, q.Pos, q.TimelineSince, q.TimelinePos, q.MembersQuiet)
	if err != nil {
		return err
	}
	resp.DeviceLists.Changed, resp.DeviceLists.Left = changed, left
	return nil
}

// DevicesDeleted follows the deletion of user's devices (nil: all of
// them, a deactivation). Their keys went with them, which recorded a
// device list change and its m.device_list_update (deleted: true) in the
// outbox (sql/0011's and 0018's trigger, whatever path deleted them);
// this wakes the trackers' syncs and the outbox relay.
func (s *Service) DevicesDeleted(ctx context.Context, user id.UserID, _ []id.DeviceID) {
	s.deviceListTouched(ctx, user)
}

// DeviceRenamed follows a change of a device's display name, which
// /keys/query shows (unsigned.device_display_name): when the device has
// keys, sql/0018's trigger recorded the change and its EDU in the rename's
// transaction; this wakes the trackers' syncs and the relay.
func (s *Service) DeviceRenamed(ctx context.Context, user id.UserID, _ id.DeviceID) {
	s.deviceListTouched(ctx, user)
}

// deviceListTouched follows a change a trigger recorded: its position is
// the user's latest.
func (s *Service) deviceListTouched(ctx context.Context, user id.UserID) {
	latest, _, err := s.store.LatestDeviceListPos(ctx, user)
	if err != nil {
		s.logger.WarnContext(ctx, "device list change: position", slog.String("error", err.Error()))
		s.kickOutbox()
		return
	}
	s.deviceListChanged(ctx, user, latest)
}
