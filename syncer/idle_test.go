package syncer

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

// oneRoomStore is a store at timeline position 5 where the user joined one
// room at position 1, counting the reads a build makes.
type oneRoomStore struct {
	emptyStore
	memberships, changes, active atomic.Int32
}

func (s *oneRoomStore) Memberships(context.Context, id.UserID, int64) ([]MembershipChange, error) {
	s.memberships.Add(1)
	return []MembershipChange{{RoomID: "!r:hs", Membership: "join", Seq: 1, StreamPos: 1}}, nil
}

func (s *oneRoomStore) MembershipChanges(context.Context, id.UserID, int64, int64) ([]MembershipChange, error) {
	s.changes.Add(1)
	return nil, nil
}

func (s *oneRoomStore) ActiveRooms(_ context.Context, rooms []id.RoomID, after, upTo int64) ([]id.RoomID, error) {
	s.active.Add(1)
	if after < upTo {
		return rooms, nil
	}
	return nil, nil
}

func (s *oneRoomStore) reads() int32 {
	return s.memberships.Load() + s.changes.Load() + s.active.Load()
}

// keyCountSource stands for the device lists stream: every answer carries
// the device's one-time key count, which changes (a claim) without a
// position of its own.
type keyCountSource struct {
	count atomic.Int64
	fills atomic.Int32
}

func (k *keyCountSource) Stream() Stream                            { return StreamDeviceLists }
func (k *keyCountSource) CurrentPos(context.Context) (int64, error) { return 3, nil }
func (k *keyCountSource) Fill(_ context.Context, _ StreamQuery, resp *Response) error {
	k.fills.Add(1)
	resp.DeviceOneTimeKeysCount = map[string]int{"signed_curve25519": int(k.count.Load())}
	resp.DeviceUnusedFallbackKeyTypes = []string{"signed_curve25519"}
	return nil
}

func newIdleService(t *testing.T) (*Service, *Notifier, *oneRoomStore, *keyCountSource, *counterSource) {
	t.Helper()
	n := NewNotifier(nil)
	st := &oneRoomStore{}
	s := New(Config{}, nil, st, n, nil, slog.New(slog.DiscardHandler))
	keys, data := &keyCountSource{}, &counterSource{}
	keys.count.Store(50)
	data.pos.Store(2)
	s.SetSources(keys, data)
	return s, n, st, keys, data
}

// current is the token of every stream's position in newIdleService.
func current() Token {
	return Token{}.With(StreamTimeline, 5).With(StreamDeviceLists, 3).With(StreamAccountData, 2)
}

// TestIdleLongPollSkipsTheBuildAndSeesACommitBeforeItsWait: a long-poll
// from the current position of every stream reads nothing before it
// waits, and a commit that lands between its read of the positions and
// its wait still ends the wait.
func TestIdleLongPollSkipsTheBuildAndSeesACommitBeforeItsWait(t *testing.T) {
	s, n, st, _, data := newIdleService(t)
	user := id.UserID("@a:hs")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var readsBeforeWait int32 = -1
	s.beforeIdleWait = func() {
		s.beforeIdleWait = nil
		readsBeforeWait = st.reads() + int32(len(data.asked))
		data.pos.Store(3)
		n.Notify(Change{Stream: StreamAccountData, Pos: 3, Users: []id.UserID{user}})
	}
	resp, err := s.Sync(ctx, Request{User: user, Device: "D", Since: current().String(), Timeout: time.Hour})
	if err != nil {
		t.Fatalf("sync: %v (the wait missed the commit)", err)
	}
	if readsBeforeWait != 1 {
		// The joined rooms, once: nothing else before the wait.
		t.Errorf("%d reads before the wait, want the joined rooms only", readsBeforeWait)
	}
	if len(resp.AccountData.Events) != 1 {
		t.Fatalf("%d account data events, want the one of position 3", len(resp.AccountData.Events))
	}
	if want := current().With(StreamAccountData, 3).String(); resp.NextBatch != want {
		t.Fatalf("next_batch %s, want %s", resp.NextBatch, want)
	}
}

// TestIdleTimeoutAnswersAsABuild: the answer of an idle long-poll that
// timed out is what a build of the same empty range gives (next_batch and
// the key counts, nothing else), the joined rooms come from the last
// build at the same position, and a key count that changed during the
// wait is the one reported.
func TestIdleTimeoutAnswersAsABuild(t *testing.T) {
	s, _, st, keys, _ := newIdleService(t)
	ctx := context.Background()
	user := id.UserID("@a:hs")
	initial, err := s.Sync(ctx, Request{User: user, Device: "D"})
	if err != nil {
		t.Fatal(err)
	}
	if initial.NextBatch != current().String() {
		t.Fatalf("initial next_batch %s, want %s", initial.NextBatch, current())
	}
	readsBefore, fillsBefore := st.reads(), keys.fills.Load()
	s.beforeIdleWait = func() { keys.count.Store(49) } // a claim, during the wait
	idle, err := s.Sync(ctx, Request{User: user, Device: "D", Since: initial.NextBatch, Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.beforeIdleWait = nil
	if got := st.reads() - readsBefore; got != 0 {
		t.Errorf("the idle long-poll read the room store %d times, want 0 (joined rooms of the initial build)", got)
	}
	if got := keys.fills.Load() - fillsBefore; got != 1 {
		t.Errorf("key counts read %d times, want once, on time-out", got)
	}
	if got := idle.DeviceOneTimeKeysCount["signed_curve25519"]; got != 49 {
		t.Errorf("one-time key count %d, want 49 (the count after the claim)", got)
	}

	b := &builder{s: s, req: Request{User: user, Device: "D"}, since: current(), pos: 5, at: current()}
	built, err := b.build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(idle)
	want, _ := json.Marshal(built)
	if string(got) != string(want) {
		t.Fatalf("time-out answer\n%s\nwant (a build of the range)\n%s", got, want)
	}
	if !idle.empty {
		t.Fatal("time-out answer not marked empty")
	}
}
