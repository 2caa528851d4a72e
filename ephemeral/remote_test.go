package ephemeral

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/syncer"
)

// remoteLog records what would go to other servers.
type remoteLog struct {
	mu       sync.Mutex
	typing   []string
	receipts []syncer.Receipt
	changed  chan struct{}
}

func newRemoteLog() *remoteLog { return &remoteLog{changed: make(chan struct{}, 16)} }

func (l *remoteLog) SendTyping(_ context.Context, room id.RoomID, user id.UserID, typing bool) {
	l.mu.Lock()
	state := "stop"
	if typing {
		state = "start"
	}
	l.typing = append(l.typing, string(user)+" "+state)
	l.mu.Unlock()
	l.changed <- struct{}{}
}

func (l *remoteLog) SendReceipt(_ context.Context, r syncer.Receipt) {
	l.mu.Lock()
	l.receipts = append(l.receipts, r)
	l.mu.Unlock()
}

func (l *remoteLog) typed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.typing)
}

// roomMembers is the joined rooms of users, and every event visible.
type roomMembers map[id.UserID][]id.RoomID

func (m roomMembers) JoinedRooms(_ context.Context, u id.UserID) ([]id.RoomID, error) {
	return m[u], nil
}
func (m roomMembers) Event(context.Context, id.UserID, id.RoomID, id.EventID) (*rooms.StoredEvent, error) {
	return &rooms.StoredEvent{}, nil
}

type receiptRows struct{ rows []syncer.Receipt }

func (r *receiptRows) PutReceipt(_ context.Context, rec syncer.Receipt) (int64, error) {
	r.rows = append(r.rows, rec)
	return int64(len(r.rows)), nil
}

func TestTypingReachesRemoteServersOnlyForLocalUsers(t *testing.T) {
	ctx := context.Background()
	room := id.RoomID("!r:hs1")
	alice, bob := id.UserID("@alice:hs1"), id.UserID("@bob:hs2")
	log := newRemoteLog()
	ty := NewTyping(&recordNotifier{}, roomMembers{alice: {room}, bob: {room}})
	ty.SetRemoteSender(log)

	// A local user: the start and the expiry go out.
	if err := ty.SetTyping(ctx, alice, room, true, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-log.changed
	// A remote user's typing is shown, never sent back out.
	if err := ty.SetRemoteTyping(ctx, bob, room, true); err != nil {
		t.Fatal(err)
	}
	if users, _ := ty.TypingIn(room); !slices.Contains(users, bob) {
		t.Fatalf("typers %v", users)
	}
	<-log.changed // alice's expiry
	if got := log.typed(); !slices.Equal(got, []string{"@alice:hs1 start", "@alice:hs1 stop"}) {
		t.Fatalf("sent %v", got)
	}
	if err := ty.SetRemoteTyping(ctx, bob, room, false); err != nil {
		t.Fatal(err)
	}
	if users, _ := ty.TypingIn(room); len(users) != 0 {
		t.Fatalf("typers %v", users)
	}
	if err := ty.SetRemoteTyping(ctx, "@eve:hs2", room, true); !errors.Is(err, mxerr.Forbidden) {
		t.Fatalf("a remote user not in the room: %v", err)
	}
	if got := log.typed(); len(got) != 2 {
		t.Fatalf("remote typing was sent out: %v", got)
	}
}

func TestReceiptsReachRemoteServersOnlyWhenPublicAndLocal(t *testing.T) {
	ctx := context.Background()
	room := id.RoomID("!r:hs1")
	alice, bob := id.UserID("@alice:hs1"), id.UserID("@bob:hs2")
	log := newRemoteLog()
	rows := &receiptRows{}
	r := NewReceipts(rows, roomMembers{alice: {room}, bob: {room}}, nil, &recordNotifier{})
	r.SetRemoteSender(log)
	for _, typ := range []string{ReceiptRead, ReceiptReadPrivate} {
		if err := r.Post(ctx, alice, room, typ, "$e", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.PutRemote(ctx, syncer.Receipt{Room: room, User: bob, Type: ReceiptRead, EventID: "$e", TS: 3}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRemote(ctx, syncer.Receipt{Room: room, User: "@eve:hs2", Type: ReceiptRead, EventID: "$e"}); !errors.Is(err, mxerr.Forbidden) {
		t.Fatalf("a remote user not in the room: %v", err)
	}
	if err := r.PutRemote(ctx, syncer.Receipt{Room: room, User: bob, Type: ReceiptReadPrivate, EventID: "$e"}); err == nil {
		t.Fatal("a private receipt from another server was stored")
	}
	if len(log.receipts) != 1 || log.receipts[0].User != alice || log.receipts[0].Type != ReceiptRead {
		t.Fatalf("sent %+v", log.receipts)
	}
	if len(rows.rows) != 3 || rows.rows[2].User != bob || rows.rows[2].TS != 3 {
		t.Fatalf("stored %+v", rows.rows)
	}
}
