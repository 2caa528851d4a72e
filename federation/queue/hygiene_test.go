package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage"
)

// countingStore counts the fan-out passes.
type countingStore struct {
	queue.Store
	fanOuts atomic.Int32
}

func (s *countingStore) FanOut(ctx context.Context, origin id.ServerName, limit int) (queue.FanOutResult, error) {
	s.fanOuts.Add(1)
	return s.Store.FanOut(ctx, origin, limit)
}

// until polls cond up to a deadline.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoFanOutWithoutSharedRooms: while no other server shares a room
// with us, our messages cost the queue nothing (no fan-out transaction);
// the first remote join turns the fan-out on, and from then on messages
// reach the server that joined.
func TestNoFanOutWithoutSharedRooms(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	room := w.room()
	cs := &countingStore{Store: w.store}
	q := queue.New(w.cfg, cs, w.tr, queue.NewMetrics(nil), slog.Default())
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.q = q
	t.Cleanup(q.Close)
	// Start runs one pass over whatever came before it.
	until(t, "the first pass", func() bool { return cs.fanOuts.Load() >= 1 })
	base := cs.fanOuts.Load()
	w.send(room, bodies("local", 30)...)
	if n := cs.fanOuts.Load() - base; n != 0 {
		t.Fatalf("%d fan-out passes for messages of a room no other server is in", n)
	}

	w.remoteJoin(room, id.NewUserID("bob", hs2))
	until(t, "a pass for the remote join", func() bool { return cs.fanOuts.Load() > base })
	w.send(room, "shared")
	r := w.recv[hs2]
	r.waitFor(t, "the message after the join", func() bool { return slices.Contains(r.bodies(t), "shared") })
	if got := r.bodies(t); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("hs2 got %v, want only the message after its join", got)
	}
}

// blockingTransport holds every transaction until its context ends.
type blockingTransport struct {
	entered  chan struct{}
	returned atomic.Bool
	calls    atomic.Int32
}

func (b *blockingTransport) SendTransaction(ctx context.Context, _ id.ServerName, _ string, _ *queue.TxnBody) (*queue.TxnResponse, error) {
	b.calls.Add(1)
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	b.returned.Store(true)
	return nil, ctx.Err()
}

// TestCloseWaitsForSenders: Close cancels a transaction under way and
// returns only once its sender has stopped; nothing is sent after it.
func TestCloseWaitsForSenders(t *testing.T) {
	w := newWorld(t, queue.Config{}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	w.send(room, "held")
	bt := &blockingTransport{entered: make(chan struct{}, 1)}
	q := queue.New(w.cfg, w.store, bt, queue.NewMetrics(nil), slog.Default())
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bt.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("no transaction was attempted")
	}
	q.Close()
	if !bt.returned.Load() {
		t.Fatal("Close returned while a sender was still in SendTransaction")
	}
	calls := bt.calls.Load()
	q.Wake(hs2)
	q.SendEvent(context.Background(), room, nil)
	q.OnInboundRequest(hs2)
	if bt.calls.Load() != calls {
		t.Errorf("a transaction was attempted after Close")
	}
}

// TestDroppableEDUsAreCapped: a destination that is away accumulates at
// most storage.MaxDroppableEDUs typing, presence and receipt EDUs — the
// oldest typing ones dropped first, then presence, then receipts — and
// every to-device message and device list update.
func TestDroppableEDUsAreCapped(t *testing.T) {
	defer func(old int) { storage.MaxDroppableEDUs = old }(storage.MaxDroppableEDUs)
	storage.MaxDroppableEDUs = 10
	w := newWorld(t, queue.Config{}, hs2)
	w.room(id.NewUserID("bob", hs2))
	ctx := context.Background()
	enqueue := func(eduType string, n int) {
		t.Helper()
		for i := range n {
			content, _ := json.Marshal(map[string]any{"n": fmt.Sprintf("%s-%02d", eduType, i)})
			if err := w.store.EnqueueEDU(ctx, []id.ServerName{hs2}, queue.EDU{Type: eduType, Content: content}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Interleaved, as they come: 30 droppable, 8 kept whatever happens.
	enqueue(queue.EDUTyping, 3)
	enqueue(queue.EDUDirectToDevice, 2)
	enqueue(queue.EDUPresence, 10)
	enqueue(queue.EDUDeviceList, 3)
	enqueue(queue.EDUReceipt, 5)
	enqueue(queue.EDUTyping, 2)
	enqueue(queue.EDUPresence, 10)
	enqueue(queue.EDUDirectToDevice, 3)
	w.start()
	r := w.recv[hs2]
	r.waitFor(t, "the EDUs", func() bool { return len(r.edus()) >= 18 })
	byType := map[string][]string{}
	for _, e := range r.edus() {
		var c struct{ N string }
		_ = json.Unmarshal(e.Content, &c)
		byType[e.Type] = append(byType[e.Type], c.N)
	}
	// Twenty dropped: the five typing, then the fifteen oldest presence.
	want := map[string][]string{
		queue.EDUPresence:       {"m.presence-05", "m.presence-06", "m.presence-07", "m.presence-08", "m.presence-09"},
		queue.EDUReceipt:        {"m.receipt-00", "m.receipt-01", "m.receipt-02", "m.receipt-03", "m.receipt-04"},
		queue.EDUDirectToDevice: {"m.direct_to_device-00", "m.direct_to_device-01", "m.direct_to_device-00", "m.direct_to_device-01", "m.direct_to_device-02"},
		queue.EDUDeviceList:     {"m.device_list_update-00", "m.device_list_update-01", "m.device_list_update-02"},
	}
	for typ, w := range want {
		if got := byType[typ]; !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", typ, got, w)
		}
	}
	if got := byType[queue.EDUTyping]; len(got) != 0 {
		t.Errorf("typing EDUs kept: %v", got)
	}
	if n := len(r.edus()); n != 18 {
		t.Errorf("%d EDUs delivered, want 18", n)
	}
}
