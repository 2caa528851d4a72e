package queue

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/syncer"
)

var _ rooms.OutboundSender = (*Queue)(nil)

// EDU types (spec server-server-api "EDUs").
const (
	EDUTyping         = "m.typing"
	EDUReceipt        = "m.receipt"
	EDUPresence       = "m.presence"
	EDUDirectToDevice = "m.direct_to_device"
	EDUDeviceList     = "m.device_list_update"
	EDUSigningKey     = "m.signing_key_update"
)

// MaxDroppableEDUs is how many typing, presence and receipt EDUs may wait
// for one destination; the store drops the oldest beyond it (typing
// first, then presence, then receipts). To-device messages and device
// list or signing key updates are never dropped: losing one breaks
// encryption, and they wait however long the destination is away.
const MaxDroppableEDUs = 1000

// DroppableEDUTypes are the EDU types the cap may drop, the first
// sacrificed first.
var DroppableEDUTypes = []string{EDUTyping, EDUPresence, EDUReceipt}

// Droppable says whether an EDU of type eduType may be dropped.
func Droppable(eduType string) bool { return slices.Contains(DroppableEDUTypes, eduType) }

// typingEDULifetime: a typing EDU not sent within this long is stale (the
// receiver would time it out anyway).
const typingEDULifetime = 30 * time.Second

// SendEvent implements rooms.OutboundSender. The event is committed and
// the senders read it from the stream: this only wakes the fan-out, and
// not even that for an event other than a membership change while no
// other server shares a room with us (nothing to send it to). ev nil
// stands for a membership change (app's notifier of received ones).
func (q *Queue) SendEvent(_ context.Context, _ id.RoomID, ev *event.Event) {
	if ev == nil || ev.Type() == "m.room.member" {
		q.memberSeen.Store(true)
	} else if !q.shared.Load() {
		return
	}
	q.wakeFanOut()
}

// SendTyping enqueues m.typing for the servers of room: a local user
// started or stopped typing (spec server-server-api "Typing
// Notifications").
func (q *Queue) SendTyping(ctx context.Context, room id.RoomID, user id.UserID, typing bool) {
	content := map[string]any{"room_id": room, "user_id": user, "typing": typing}
	q.sendRoomEDU(ctx, room, EDUTyping, content, "typing|"+string(room)+"|"+string(user),
		q.cfg.Now().Add(typingEDULifetime))
}

// SendReceipt enqueues m.receipt for the servers of the receipt's room: a
// local user's public read receipt (private ones never leave the server).
func (q *Queue) SendReceipt(ctx context.Context, r syncer.Receipt) {
	if r.Type != "m.read" {
		return
	}
	data := map[string]any{"ts": r.TS}
	if r.ThreadID != "" {
		data["thread_id"] = r.ThreadID
	}
	content := map[id.RoomID]any{r.Room: map[string]any{"m.read": map[id.UserID]any{
		r.User: map[string]any{"event_ids": []id.EventID{r.EventID}, "data": data}}}}
	q.sendRoomEDU(ctx, r.Room, EDUReceipt, content, "receipt|"+string(r.Room)+"|"+string(r.User)+"|"+r.ThreadID,
		time.Time{})
}

// SendPresence enqueues m.presence for every server sharing a room with
// the user (spec: only servers that would be interested).
func (q *Queue) SendPresence(ctx context.Context, e syncer.PresenceEntry) {
	if e.User.Server() != q.cfg.ServerName {
		return
	}
	dests, err := q.store.UserServers(ctx, e.User)
	if err != nil {
		q.logger.ErrorContext(ctx, "federation queue: servers of user", slog.String("user_id", string(e.User)),
			slog.String("error", err.Error()))
		return
	}
	q.enqueue(ctx, dests, EDUPresence, map[string]any{"push": []any{presenceUpdate(e)}}, "presence|"+string(e.User), time.Time{})
}

// SetPresenceSource makes a server that starts sharing a room with our
// users receive their current presence at once (spec server-server-api
// "Presence": servers send the updates the receiver is interested in);
// call it while wiring, before Start.
func (q *Queue) SetPresenceSource(p PresenceSource) { q.presence = p }

// sendPresenceTo sends each newly joined server the presence of our users
// in the room it joined.
func (q *Queue) sendPresenceTo(joined []RoomServer) {
	if q.presence == nil {
		return
	}
	for _, j := range joined {
		users, err := q.store.LocalMembers(q.ctx, j.Room, q.cfg.ServerName)
		if err != nil {
			q.logger.Error("federation queue: local members", slog.String("room_id", string(j.Room)),
				slog.String("error", err.Error()))
			continue
		}
		// A big room's members go in several EDUs, each of a size any
		// server accepts.
		entries := q.presence.CurrentPresence(users)
		for len(entries) > 0 {
			n := min(len(entries), presencePerEDU)
			push := make([]any, n)
			for i, e := range entries[:n] {
				push[i] = presenceUpdate(e)
			}
			entries = entries[n:]
			q.enqueue(q.ctx, []id.ServerName{j.Server}, EDUPresence, map[string]any{"push": push}, "", time.Time{})
		}
	}
}

// presencePerEDU bounds the users of one m.presence EDU.
const presencePerEDU = 100

func presenceUpdate(e syncer.PresenceEntry) map[string]any {
	update := map[string]any{"user_id": e.User, "presence": e.Presence, "currently_active": e.CurrentlyActive,
		"last_active_ago": max(e.LastActiveAgo, 0)}
	if e.StatusMsg != "" {
		update["status_msg"] = e.StatusMsg
	}
	return update
}

// SendEDU enqueues an EDU of any type for one destination (to-device
// messages, device list updates: keys.EDUSender); it is stored before it
// returns.
func (q *Queue) SendEDU(ctx context.Context, dest id.ServerName, eduType string, content json.RawMessage) error {
	dests := q.remote([]id.ServerName{dest})
	if len(dests) == 0 {
		return nil
	}
	if err := q.store.EnqueueEDU(ctx, dests, EDU{Type: eduType, Content: content}); err != nil {
		return err
	}
	q.wakeAll(dests)
	return nil
}

// ServersSharingRoomWith lists the remote servers that share a joined room
// with user (whom a device list update concerns).
func (q *Queue) ServersSharingRoomWith(ctx context.Context, user id.UserID) ([]id.ServerName, error) {
	dests, err := q.store.UserServers(ctx, user)
	if err != nil {
		return nil, err
	}
	return q.remote(dests), nil
}

func (q *Queue) sendRoomEDU(ctx context.Context, room id.RoomID, eduType string, content any, key string, expires time.Time) {
	dests, err := q.store.RoomServers(ctx, room)
	if err != nil {
		if q.isStopped() {
			// The node is shutting down (its database is closing): a
			// typing timer or receipt that fired late has nowhere to go.
			return
		}
		q.logger.ErrorContext(ctx, "federation queue: servers of room", slog.String("room_id", string(room)),
			slog.String("error", err.Error()))
		return
	}
	q.enqueue(ctx, dests, eduType, content, key, expires)
}

// enqueue stores an EDU for dests; an error is logged (EDUs are
// best-effort: the local change has been made).
func (q *Queue) enqueue(ctx context.Context, dests []id.ServerName, eduType string, content any, key string, expires time.Time) {
	dests = q.remote(dests)
	if len(dests) == 0 {
		return
	}
	raw, err := json.Marshal(content)
	if err == nil {
		err = q.store.EnqueueEDU(ctx, dests, EDU{Type: eduType, Content: raw, CoalesceKey: key, Expires: expires})
	}
	if err != nil {
		q.logger.ErrorContext(ctx, "federation queue: enqueue EDU", slog.String("edu_type", eduType),
			slog.String("error", err.Error()))
		return
	}
	q.wakeAll(dests)
}

// remote drops ourselves, empty names and duplicates.
func (q *Queue) remote(dests []id.ServerName) []id.ServerName {
	out := make([]id.ServerName, 0, len(dests))
	for _, d := range dests {
		if d != "" && d != q.cfg.ServerName && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func (q *Queue) wakeAll(dests []id.ServerName) {
	for _, d := range dests {
		q.Wake(d)
	}
}
