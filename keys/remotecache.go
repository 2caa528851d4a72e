package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
)

// RemoteDeviceList is the cached device list of a remote user (spec
// server-server-api "Device Management"): what GET /user/devices answered,
// kept up to date by m.device_list_update and m.signing_key_update.
type RemoteDeviceList struct {
	User id.UserID `json:"-"`
	// StreamID is the remote server's position of the list; 0 when it
	// had sent no update for the user (only an update with an empty
	// prev_id continues such a list).
	StreamID       int64                        `json:"-"`
	Devices        map[id.DeviceID]RemoteDevice `json:"devices"`
	MasterKey      json.RawMessage              `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage              `json:"self_signing_key,omitempty"`
}

// RemoteDevice is one device of a cached list.
type RemoteDevice struct {
	DisplayName string          `json:"display_name,omitempty"`
	Keys        json.RawMessage `json:"keys,omitempty"`
}

// RemoteDeviceStore keeps the cache of remote device lists.
type RemoteDeviceStore interface {
	// RemoteDeviceLists returns the cached lists of users (absent: none).
	RemoteDeviceLists(ctx context.Context, users []id.UserID) (map[id.UserID]*RemoteDeviceList, error)
	// PutRemoteDeviceList stores l unless a list of a later stream_id is
	// stored already (a resync racing an update keeps the newer); local is
	// this server's name: the list goes when no user of local shares a
	// room with l.User any more (sql/0014's trigger).
	PutRemoteDeviceList(ctx context.Context, local id.ServerName, l *RemoteDeviceList) error
	DeleteRemoteDeviceList(ctx context.Context, user id.UserID) error
	// SharingWithLocal returns those of users (all of server) who are
	// joined to a room a user of local is joined to.
	SharingWithLocal(ctx context.Context, users []id.UserID, local id.ServerName) ([]id.UserID, error)
}

// RemoteDevices fetches a remote user's device list (GET
// /_matrix/federation/v1/user/devices/{userId}); RemoteKeys implementations
// that have it enable the cache.
type RemoteDevices interface {
	UserDevices(ctx context.Context, user id.UserID) (json.RawMessage, error)
}

func (s *Service) remoteDevices() RemoteDevices {
	rd, _ := s.remoteKeys().(RemoteDevices)
	return rd
}

// fetchDeviceList asks user's server for their whole list (a first query,
// or a resync after a gap in the prev_id chain) and caches it.
func (s *Service) fetchDeviceList(ctx context.Context, user id.UserID) (*RemoteDeviceList, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	raw, err := s.remoteDevices().UserDevices(ctx, user)
	if err != nil {
		return nil, err
	}
	var body struct {
		UserID   id.UserID `json:"user_id"`
		StreamID int64     `json:"stream_id"`
		Devices  []struct {
			DeviceID    id.DeviceID     `json:"device_id"`
			DisplayName string          `json:"device_display_name"`
			Keys        json.RawMessage `json:"keys"`
		} `json:"devices"`
		MasterKey      json.RawMessage `json:"master_key"`
		SelfSigningKey json.RawMessage `json:"self_signing_key"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, err
	}
	l := &RemoteDeviceList{User: user, StreamID: body.StreamID, Devices: map[id.DeviceID]RemoteDevice{},
		MasterKey: ownedKey(body.MasterKey, user), SelfSigningKey: ownedKey(body.SelfSigningKey, user)}
	for _, d := range body.Devices {
		if d.DeviceID == "" {
			continue
		}
		l.Devices[d.DeviceID] = RemoteDevice{DisplayName: d.DisplayName, Keys: ownedKey(d.Keys, user)}
	}
	if err := s.store.PutRemoteDeviceList(ctx, s.cfg.ServerName, l); err != nil {
		return nil, err
	}
	return l, nil
}

// ownedKey returns raw when it is a JSON object whose user_id is user (a
// server must not slip keys of another user into a list), else nil.
func ownedKey(raw json.RawMessage, user id.UserID) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var o struct {
		UserID id.UserID `json:"user_id"`
	}
	if json.Unmarshal(raw, &o) != nil || o.UserID != user {
		return nil
	}
	return raw
}

// answerFromList merges a cached list into a /keys/query response: the
// devices asked for (all when devs is empty), with the display name in
// unsigned as the user's server would show it.
func answerFromList(resp *QueryResponse, l *RemoteDeviceList, devs []id.DeviceID) {
	out := map[id.DeviceID]json.RawMessage{}
	for d, dev := range l.Devices {
		if len(dev.Keys) == 0 || (len(devs) > 0 && !slices.Contains(devs, d)) {
			continue
		}
		keys := dev.Keys
		if v, err := canonicaljson.ParseLenient(keys); err == nil && dev.DisplayName != "" {
			if _, has := v.Get("unsigned"); !has {
				keys = canonicaljson.Encode(v.With("unsigned",
					canonicaljson.ObjectValue().With("device_display_name", canonicaljson.StringValue(dev.DisplayName))))
			}
		}
		out[d] = keys
	}
	resp.DeviceKeys[l.User] = out
	if l.MasterKey != nil {
		resp.MasterKeys[l.User] = l.MasterKey
	}
	if l.SelfSigningKey != nil {
		resp.SelfSigningKeys[l.User] = l.SelfSigningKey
	}
}

// maxFillsPerQuery bounds the device lists one /keys/query fetches from
// one server.
const maxFillsPerQuery = 20

// queryCached answers the remote users of want who share a room with a
// local user from the cache, filling it (GET /user/devices) for those not
// cached yet, and returns the users still to ask with /user/keys/query.
func (s *Service) queryCached(ctx context.Context, server id.ServerName, want map[id.UserID][]id.DeviceID, resp *QueryResponse) map[id.UserID][]id.DeviceID {
	if s.remoteDevices() == nil {
		return want
	}
	users := make([]id.UserID, 0, len(want))
	for u := range want {
		users = append(users, u)
	}
	sharing, err := s.store.SharingWithLocal(ctx, users, s.cfg.ServerName)
	if err != nil {
		s.logger.WarnContext(ctx, "remote device cache: users sharing a room", slog.String("error", err.Error()))
		return want
	}
	// A user whose list awaits a resync is asked directly: the worker
	// fills the cache.
	stale, err := s.store.ResyncsPending(ctx, sharing)
	if err != nil {
		s.logger.WarnContext(ctx, "remote device cache: resyncs", slog.String("error", err.Error()))
		return want
	}
	sharing = slices.DeleteFunc(sharing, func(u id.UserID) bool { return slices.Contains(stale, u) })
	cached, err := s.store.RemoteDeviceLists(ctx, sharing)
	if err != nil {
		s.logger.WarnContext(ctx, "remote device cache", slog.String("error", err.Error()))
		return want
	}
	rest := map[id.UserID][]id.DeviceID{}
	for u, devs := range want {
		rest[u] = devs
	}
	// Fills are one GET each: at most maxFillsPerQuery per server and
	// query, all within one remoteTimeout, so a first query of many users
	// is not a long series of round trips; the others go in the batch
	// query and are filled by later queries.
	fillCtx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	fills := 0
	for _, u := range sharing {
		l := cached[u]
		if l == nil {
			if fills == maxFillsPerQuery {
				continue
			}
			fills++
			if l, err = s.fetchDeviceList(fillCtx, u); err != nil {
				s.logger.InfoContext(ctx, "remote device list", slog.String("user_id", string(u)), slog.String("error", err.Error()))
				break // the server is unreachable: the batch query reports it
			}
		}
		s.mergeMu.Lock()
		answerFromList(resp, l, want[u])
		s.mergeMu.Unlock()
		delete(rest, u)
	}
	return rest
}

// deviceListUpdate is the content of m.device_list_update.
type deviceListUpdate struct {
	UserID      id.UserID       `json:"user_id"`
	DeviceID    id.DeviceID     `json:"device_id"`
	DisplayName string          `json:"device_display_name"`
	StreamID    int64           `json:"stream_id"`
	PrevID      []int64         `json:"prev_id"`
	Deleted     bool            `json:"deleted"`
	Keys        json.RawMessage `json:"keys"`
}

// applyDeviceListUpdate follows an inbound m.device_list_update in the
// cache: applied when its prev_id chain continues the cached list (spec:
// "If the receiving server has seen all of the prev_id, it may apply the
// update"), a resync when it does not (a gap), nothing when the user is
// not cached, and the list dropped when no local user shares a room with
// the user any more.
func (s *Service) applyDeviceListUpdate(ctx context.Context, u deviceListUpdate) {
	lists, err := s.store.RemoteDeviceLists(ctx, []id.UserID{u.UserID})
	if err != nil {
		return
	}
	l := lists[u.UserID]
	if l == nil {
		// Not cached, or dropped for a resync under way: that one must
		// fetch again, the list it fetched may predate this update.
		marked, err := s.store.RemarkResync(ctx, u.UserID)
		if err != nil {
			s.logger.WarnContext(ctx, "remote device list resync", slog.String("error", err.Error()))
		} else if marked {
			s.kickResyncs() // the server just spoke: it is up
		}
		return
	}
	if sharing, err := s.store.SharingWithLocal(ctx, []id.UserID{u.UserID}, s.cfg.ServerName); err == nil && len(sharing) == 0 {
		_ = s.store.DeleteRemoteDeviceList(ctx, u.UserID)
		return
	}
	// Known: the update is the list's own position again, or each of its
	// prev_ids is the list's position; an empty prev_id starts a sequence
	// (spec: "may be missing or empty for the first EDU"), which only a
	// list of a server that had sent nothing (stream_id 0) continues.
	var known bool
	switch {
	case u.StreamID == l.StreamID:
		known = true
	case len(u.PrevID) == 0:
		known = l.StreamID == 0
	default:
		known = !slices.ContainsFunc(u.PrevID, func(p int64) bool { return p != l.StreamID })
	}
	switch {
	case u.StreamID < l.StreamID:
		return // older than the list
	case !known:
		s.resync(ctx, u.UserID)
		return
	}
	if u.Deleted {
		delete(l.Devices, u.DeviceID)
	} else {
		l.Devices[u.DeviceID] = RemoteDevice{DisplayName: u.DisplayName, Keys: ownedKey(u.Keys, u.UserID)}
	}
	l.StreamID = u.StreamID
	if err := s.store.PutRemoteDeviceList(ctx, s.cfg.ServerName, l); err != nil {
		s.logger.WarnContext(ctx, "remote device cache: apply update", slog.String("error", err.Error()))
		_ = s.store.DeleteRemoteDeviceList(ctx, u.UserID)
	}
}

// applySigningKeyUpdate replaces the cross-signing keys of a cached list.
func (s *Service) applySigningKeyUpdate(ctx context.Context, user id.UserID, master, selfSigning json.RawMessage) {
	lists, err := s.store.RemoteDeviceLists(ctx, []id.UserID{user})
	if err != nil || lists[user] == nil {
		return
	}
	l := lists[user]
	if k := ownedKey(master, user); k != nil {
		l.MasterKey = k
	}
	if k := ownedKey(selfSigning, user); k != nil {
		l.SelfSigningKey = k
	}
	if err := s.store.PutRemoteDeviceList(ctx, s.cfg.ServerName, l); err != nil {
		_ = s.store.DeleteRemoteDeviceList(ctx, user)
	}
}
