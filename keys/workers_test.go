package keys

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/syncer"
)

// workerStore answers the background workers' calls; any other call
// panics (the embedded nil Store).
type workerStore struct {
	Store
	expiries, outboxReads atomic.Int64
	before                atomic.Int64 // the last expiry's cut-off, unix ms
}

func (w *workerStore) ExpireToDevice(_ context.Context, before time.Time) (int64, error) {
	w.before.Store(before.UnixMilli())
	w.expiries.Add(1)
	return 0, nil
}

func (w *workerStore) DeviceListOutbox(context.Context, int) ([]OutboxEntry, error) {
	w.outboxReads.Add(1)
	return nil, nil
}

type nopNotifier struct{}

func (nopNotifier) Notify(syncer.Change) {}

// TestWorkersRunAndStopOnClose: Start runs the to-device expiry (cutting
// at now - retention) and the outbox relay at once; Close stops them —
// nothing runs after it returns.
func TestWorkersRunAndStopOnClose(t *testing.T) {
	st := &workerStore{}
	s := New(Config{ServerName: id.ServerName("hs.test"), ToDeviceRetention: time.Hour}, st, nopNotifier{}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	s.Start()
	deadline := time.Now().Add(10 * time.Second)
	for st.expiries.Load() == 0 || st.outboxReads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the workers did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cut := time.UnixMilli(st.before.Load()); cut.Before(start.Add(-time.Hour-time.Second)) || cut.After(time.Now().Add(-time.Hour)) {
		t.Fatalf("expiry cut-off %v, want about an hour before %v", cut, start)
	}
	s.kickOutbox()
	s.Close()
	e, o := st.expiries.Load(), st.outboxReads.Load()
	s.kickOutbox()
	s.kickResyncs()
	// Close waited for the goroutines: the counters are final.
	if st.expiries.Load() != e || st.outboxReads.Load() != o {
		t.Fatal("a worker ran after Close")
	}
}

// TestToDeviceExpiryInterval: a quarter of the retention, within [1 s, 1 h].
func TestToDeviceExpiryInterval(t *testing.T) {
	for _, tc := range []struct{ retention, want time.Duration }{
		{time.Second, time.Second}, {20 * time.Second, 5 * time.Second}, {30 * 24 * time.Hour, time.Hour},
	} {
		s := New(Config{ToDeviceRetention: tc.retention}, nil, nil, nil, nil)
		if got := s.toDeviceExpiryEvery(); got != tc.want {
			t.Errorf("retention %v: every %v, want %v", tc.retention, got, tc.want)
		}
	}
}
