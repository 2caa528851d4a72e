package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ephemeral"
	"github.com/parleyhq/parley/federation"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/syncer"
)

// membership is the joined rooms of each user: the rooms' state, which
// the EDU checks read.
type membership map[id.UserID][]id.RoomID

func (m membership) JoinedRooms(_ context.Context, u id.UserID) ([]id.RoomID, error) {
	return m[u], nil
}

// Event is never needed: remote receipts may name events not arrived yet.
func (m membership) Event(context.Context, id.UserID, id.RoomID, id.EventID) (*rooms.StoredEvent, error) {
	return nil, rooms.ErrEventNotFound
}

// receiptLog keeps the receipts written.
type receiptLog struct {
	mu       sync.Mutex
	receipts []syncer.Receipt
}

func (l *receiptLog) PutReceipt(_ context.Context, r syncer.Receipt) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.receipts = append(l.receipts, r)
	return int64(len(l.receipts)), nil
}

type nopNotifier struct{}

func (nopNotifier) Notify(syncer.Change) {}

// keysLog records what reached the E2EE service.
type keysLog struct{ got []string }

func (k *keysLog) HandleDirectToDevice(_ context.Context, origin id.ServerName, _ json.RawMessage) error {
	k.got = append(k.got, "to_device:"+string(origin))
	return nil
}
func (k *keysLog) HandleDeviceListUpdate(_ context.Context, origin id.ServerName, _ json.RawMessage) error {
	k.got = append(k.got, "device_list:"+string(origin))
	return nil
}
func (k *keysLog) HandleSigningKeyUpdate(_ context.Context, origin id.ServerName, _ json.RawMessage) error {
	k.got = append(k.got, "signing_key:"+string(origin))
	return nil
}

func TestInboundEDUs(t *testing.T) {
	const (
		room   = id.RoomID("!r:hs1.test")
		denied = id.RoomID("!acl:hs1.test")
		other  = id.RoomID("!other:hs1.test")
	)
	bob, eve := id.UserID("@bob:hs2.test"), id.UserID("@eve:hs3.test")
	members := membership{bob: {room, denied}, eve: {room}}
	ctx := context.Background()

	newEDUs := func() (*federation.EDUs, *ephemeral.Typing, *receiptLog, *presence.Service, *keysLog) {
		typing := ephemeral.NewTyping(nopNotifier{}, members)
		log := &receiptLog{}
		receipts := ephemeral.NewReceipts(log, members, nil, nopNotifier{})
		pres := presence.New(presence.Config{Enabled: true}, nopNotifier{}, members, slog.Default())
		t.Cleanup(pres.Close)
		keys := &keysLog{}
		e := federation.NewEDUs(federation.EDUDeps{Typing: typing, Receipts: receipts, Presence: pres, Keys: keys,
			ACL: func(_ context.Context, r id.RoomID, origin id.ServerName) error {
				if r == denied {
					return mxerr.Forbidden.Msg("denied by the ACL")
				}
				return nil
			}})
		return e, typing, log, pres, keys
	}

	t.Run("typing of the origin's joined user only", func(t *testing.T) {
		e, typing, _, _, _ := newEDUs()
		for _, c := range []struct {
			origin  id.ServerName
			content string
		}{
			{"hs2.test", `{"room_id":"!r:hs1.test","user_id":"@bob:hs2.test","typing":true}`},
			{"hs2.test", `{"room_id":"!r:hs1.test","user_id":"@eve:hs3.test","typing":true}`},     // not origin's user
			{"hs2.test", `{"room_id":"!other:hs1.test","user_id":"@bob:hs2.test","typing":true}`}, // not joined
			{"hs2.test", `{"room_id":"!acl:hs1.test","user_id":"@bob:hs2.test","typing":true}`},   // ACL
			{"hs2.test", `{"room_id":"!r:hs1.test","user_id":"@carol:hs2.test","typing":true}`},   // not joined
			{"hs2.test", `{"room_id":"nope","user_id":"@bob:hs2.test","typing":true}`},
			{"hs2.test", `[1]`},
		} {
			e.HandleEDU(ctx, c.origin, "m.typing", json.RawMessage(c.content))
		}
		for r, want := range map[id.RoomID][]id.UserID{room: {bob}, other: nil, denied: nil} {
			if got, _ := typing.TypingIn(r); !slices.Equal(got, want) {
				t.Errorf("typing in %s: %v, want %v", r, got, want)
			}
		}
		e.HandleEDU(ctx, "hs2.test", "m.typing", json.RawMessage(`{"room_id":"!r:hs1.test","user_id":"@bob:hs2.test","typing":false}`))
		if got, _ := typing.TypingIn(room); len(got) != 0 {
			t.Errorf("after typing false: %v", got)
		}
	})

	t.Run("receipts of the origin's users in admitted rooms", func(t *testing.T) {
		e, _, log, _, _ := newEDUs()
		e.HandleEDU(ctx, "hs2.test", "m.receipt", json.RawMessage(`{
			"!r:hs1.test": {"m.read": {
				"@bob:hs2.test": {"event_ids": ["$a"], "data": {"ts": 7, "thread_id": "main"}},
				"@eve:hs3.test": {"event_ids": ["$b"], "data": {"ts": 8}}}},
			"!acl:hs1.test": {"m.read": {"@bob:hs2.test": {"event_ids": ["$c"], "data": {"ts": 9}}}},
			"!other:hs1.test": {"m.read": {"@bob:hs2.test": {"event_ids": ["$d"], "data": {"ts": 9}}}}
		}`))
		want := []syncer.Receipt{{Room: room, User: bob, Type: "m.read", ThreadID: "main", EventID: "$a", TS: 7}}
		if !slices.Equal(log.receipts, want) {
			t.Fatalf("receipts %+v, want %+v", log.receipts, want)
		}
	})

	t.Run("presence of the origin's users, shown to those who share a room", func(t *testing.T) {
		e, _, _, pres, _ := newEDUs()
		e.HandleEDU(ctx, "hs2.test", "m.presence", json.RawMessage(`{"push": [
			{"user_id": "@bob:hs2.test", "presence": "unavailable", "last_active_ago": 5000, "status_msg": "lunch"},
			{"user_id": "@eve:hs3.test", "presence": "online", "last_active_ago": 1},
			{"user_id": "@carol:hs2.test", "presence": "online", "last_active_ago": 1},
			{"user_id": "@bob:hs2.test", "presence": "dancing", "last_active_ago": 1}]}`))
		// eve is not the origin's, "dancing" no presence; carol shares no
		// room yet and is kept only for a join under way (presence.EarlyRemoteTTL).
		got := pres.PresenceBetween(0, pres.PresencePos())
		slices.SortFunc(got, func(a, b syncer.PresenceEntry) int { return strings.Compare(string(a.User), string(b.User)) })
		if len(got) != 2 || got[0].User != bob || got[0].Presence != "unavailable" || got[0].StatusMsg != "lunch" ||
			got[0].LastActiveAgo < 5000 || got[0].LastActiveAgo > 5000+time.Minute.Milliseconds() ||
			got[1].User != "@carol:hs2.test" {
			t.Fatalf("presence %+v", got)
		}
		// Visible to a local user sharing the room.
		members["@alice:hs1.test"] = []id.RoomID{room}
		defer delete(members, "@alice:hs1.test")
		st, err := pres.Status(ctx, "@alice:hs1.test", bob)
		if err != nil || st.Presence != "unavailable" {
			t.Fatalf("status %+v, %v", st, err)
		}
		if _, err := pres.Status(ctx, "@zed:hs1.test", bob); !errors.Is(err, mxerr.Forbidden) {
			t.Fatalf("a user sharing no room: %v", err)
		}
		if _, err := pres.Status(ctx, "@alice:hs1.test", "@carol:hs2.test"); !errors.Is(err, mxerr.Forbidden) {
			t.Fatalf("carol, who shares no room with alice: %v", err)
		}
	})

	t.Run("E2EE EDUs go to the keys service", func(t *testing.T) {
		e, _, _, _, keys := newEDUs()
		for _, typ := range []string{"m.direct_to_device", "m.device_list_update", "m.signing_key_update", "m.unknown"} {
			e.HandleEDU(ctx, "hs2.test", typ, json.RawMessage(`{}`))
		}
		want := []string{"to_device:hs2.test", "device_list:hs2.test", "signing_key:hs2.test"}
		if !slices.Equal(keys.got, want) {
			t.Fatalf("keys got %v", keys.got)
		}
	})
}
