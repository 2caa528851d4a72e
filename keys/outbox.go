package keys

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/parleyhq/parley/id"
)

// The outbox of device list EDUs (spec server-server-api "Device
// Management"). A change of a local user's devices or cross-signing keys
// writes an entry in the change's own transaction (the store's methods, and
// sql/0018's triggers for deletions and renames); the relay below turns
// entries into EDUs in the federation queue's durable table, for every
// server sharing a room with the user, and deletes them in that same
// transaction; the queue deletes an EDU once its destination acknowledged
// it. So no crash loses an update: what is left is relayed at the next
// start.

// Outbox entry kinds.
const (
	OutboxDevice  = "device"  // m.device_list_update
	OutboxSigning = "signing" // m.signing_key_update
)

// OutboxEntry is one change waiting to be relayed.
type OutboxEntry struct {
	// StreamID is the change's device lists position: the EDU's
	// stream_id, unique per update (spec).
	StreamID int64
	User     id.UserID
	Kind     string
	Device   id.DeviceID // OutboxDevice
	Deleted  bool
	// PrevIDs is the stream_id of the user's previous update (none for
	// the first).
	PrevIDs []int64
}

// RelayedEDU is an entry made into an EDU for its destinations.
type RelayedEDU struct {
	StreamID     int64
	Type         string
	Content      json.RawMessage
	Destinations []id.ServerName
}

// OutboxStore keeps the outbox.
type OutboxStore interface {
	// DeviceListOutbox returns the oldest entries, at most limit.
	DeviceListOutbox(ctx context.Context, limit int) ([]OutboxEntry, error)
	// RelayDeviceListOutbox, in one transaction (one at a time across
	// nodes), queues each EDU for its destinations in the federation
	// queue and deletes its entry; an entry already gone (another node
	// relayed it) is skipped. It returns the destinations that got one.
	RelayDeviceListOutbox(ctx context.Context, edus []RelayedEDU) ([]id.ServerName, error)
	// OutboundHead is the stream_id of user's latest update (0: none).
	OutboundHead(ctx context.Context, user id.UserID) (int64, error)
}

// QueueWaker wakes the federation queue's sender of a destination: the
// relay wrote its EDUs to the queue's table directly. The federation
// queue implements it next to EDUSender.
type QueueWaker interface {
	Wake(dest id.ServerName)
}

// outboxBatch is how many entries one relay pass reads; outboxPoll how
// often the relay looks without being kicked (entries of another node
// whose relay stopped, a failed pass).
const (
	outboxBatch = 100
	outboxPoll  = 30 * time.Second
)

// kickOutbox makes the relay look now.
func (s *Service) kickOutbox() {
	select {
	case s.outboxKick <- struct{}{}:
	default:
	}
}

// HoldOutbox stops (true) or resumes (false) the relay: tests hold it to
// leave a change in the outbox, as a crash right after its commit would.
func (s *Service) HoldOutbox(hold bool) {
	s.outboxHeld.Store(hold)
	if !hold {
		s.kickOutbox()
	}
}

// runOutbox relays until ctx ends.
func (s *Service) runOutbox(ctx context.Context) {
	t := time.NewTicker(outboxPoll)
	defer t.Stop()
	for {
		for !s.outboxHeld.Load() {
			n, err := s.relayOutbox(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.logger.WarnContext(ctx, "device list outbox", slog.String("error", err.Error()))
				}
				break // the ticker retries
			}
			if n < outboxBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.outboxKick:
		case <-t.C:
		}
	}
}

// relayOutbox relays one batch and returns how many entries it read.
func (s *Service) relayOutbox(ctx context.Context) (int, error) {
	entries, err := s.store.DeviceListOutbox(ctx, outboxBatch)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	type userState struct {
		servers []id.ServerName
		keys    *QueryResponse
	}
	users := map[id.UserID]*userState{}
	edus := make([]RelayedEDU, 0, len(entries))
	for _, e := range entries {
		st := users[e.User]
		if st == nil {
			st = &userState{}
			// The servers sharing a room now, and the keys as they are
			// now (with the signatures uploaded for them, as /keys/query
			// shows them): a later entry of the same device carries the
			// same, which is what the receiver must end with.
			if s.eduSender() != nil {
				if st.servers, err = s.remoteServersOf(ctx, e.User); err != nil {
					return 0, err
				}
			}
			if len(st.servers) > 0 {
				if st.keys, err = s.queryLocal(ctx, map[id.UserID][]id.DeviceID{e.User: nil}, ""); err != nil {
					return 0, err
				}
			}
			users[e.User] = st
		}
		edu := RelayedEDU{StreamID: e.StreamID, Destinations: st.servers}
		if len(st.servers) > 0 {
			edu.Type, edu.Content = outboxEDU(e, st.keys)
		}
		edus = append(edus, edu)
	}
	woken, err := s.store.RelayDeviceListOutbox(ctx, edus)
	if err != nil {
		return 0, err
	}
	if w, ok := s.eduSender().(QueueWaker); ok {
		for _, d := range woken {
			w.Wake(d)
		}
	}
	return len(entries), nil
}

// outboxEDU builds an entry's EDU from the user's current keys.
func outboxEDU(e OutboxEntry, resp *QueryResponse) (string, json.RawMessage) {
	if e.Kind == OutboxSigning {
		edu := map[string]any{"user_id": e.User}
		if k, ok := resp.MasterKeys[e.User]; ok {
			edu["master_key"] = k
		}
		if k, ok := resp.SelfSigningKeys[e.User]; ok {
			edu["self_signing_key"] = k
		}
		content, _ := json.Marshal(edu)
		return "m.signing_key_update", content
	}
	prev := e.PrevIDs
	if prev == nil {
		prev = []int64{}
	}
	edu := map[string]any{"user_id": e.User, "device_id": e.Device, "stream_id": e.StreamID, "prev_id": prev,
		"deleted": true}
	// A device deleted since the change is sent as deleted: its deletion
	// is a later entry, and the receiver must not keep it meanwhile.
	if k, ok := resp.DeviceKeys[e.User][e.Device]; ok && !e.Deleted {
		edu["deleted"] = false
		edu["keys"] = k
		var dk struct {
			Unsigned struct {
				Name string `json:"device_display_name"`
			} `json:"unsigned"`
		}
		if json.Unmarshal(k, &dk) == nil && dk.Unsigned.Name != "" {
			edu["device_display_name"] = dk.Unsigned.Name
		}
	}
	content, _ := json.Marshal(edu)
	return "m.device_list_update", content
}

// remoteServersOf are the other servers sharing a joined room with user.
func (s *Service) remoteServersOf(ctx context.Context, user id.UserID) ([]id.ServerName, error) {
	sharing, err := s.store.UsersSharingRoom(ctx, user)
	if err != nil {
		return nil, err
	}
	var servers []id.ServerName
	seen := map[id.ServerName]bool{}
	for _, u := range sharing {
		if srv := u.Server(); srv != s.cfg.ServerName && !seen[srv] {
			seen[srv] = true
			servers = append(servers, srv)
		}
	}
	return servers, nil
}
