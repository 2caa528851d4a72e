package syncer

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
)

// emptyStore is a room store with no rooms at timeline position 5.
type emptyStore struct{}

func (emptyStore) CurrentStreamPos(context.Context) (int64, error) { return 5, nil }
func (emptyStore) Memberships(context.Context, id.UserID, int64) ([]MembershipChange, error) {
	return nil, nil
}
func (emptyStore) MembershipChanges(context.Context, id.UserID, int64, int64) ([]MembershipChange, error) {
	return nil, nil
}
func (emptyStore) ActiveRooms(context.Context, []id.RoomID, int64, int64) ([]id.RoomID, error) {
	return nil, nil
}
func (emptyStore) RoomEventsBetween(context.Context, id.RoomID, int64, int64, int) ([]*rooms.StoredEvent, bool, error) {
	return nil, false, nil
}
func (emptyStore) StateBefore(context.Context, id.RoomID, int64) (rooms.State, error) {
	return nil, nil
}
func (emptyStore) StateEntriesBefore(context.Context, id.RoomID, int64, []auth.StateKey) (rooms.State, error) {
	return nil, nil
}
func (emptyStore) StateChanges(context.Context, id.RoomID, int64, int64) ([]*rooms.StoredEvent, error) {
	return nil, nil
}
func (emptyStore) RoomSummary(context.Context, id.RoomID, id.UserID) (Summary, error) {
	return Summary{}, nil
}

// counterSource is a stream whose every position is one account data
// event {"type":"n","content":{"pos":N}}.
type counterSource struct {
	pos   atomic.Int64
	asked []StreamQuery
}

func (c *counterSource) Stream() Stream { return StreamAccountData }
func (c *counterSource) CurrentPos(context.Context) (int64, error) {
	return c.pos.Load(), nil
}
func (c *counterSource) Fill(_ context.Context, q StreamQuery, resp *Response) error {
	c.asked = append(c.asked, q)
	for p := q.Since + 1; p <= q.Pos; p++ {
		raw, _ := json.Marshal(map[string]any{"type": "n", "content": map[string]int64{"pos": p}})
		resp.AccountData.Events = append(resp.AccountData.Events, raw)
	}
	return nil
}

func newTestService(src StreamSource) (*Service, *Notifier) {
	n := NewNotifier(nil)
	s := New(Config{}, nil, emptyStore{}, n, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetSources(src)
	return s, n
}

func TestStreamSources(t *testing.T) {
	ctx := context.Background()
	user := id.UserID("@a:hs")
	src := &counterSource{}
	src.pos.Store(2)
	s, n := newTestService(src)

	t.Run("initial sync carries the source's events and position", func(t *testing.T) {
		resp, err := s.Sync(ctx, Request{User: user})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.AccountData.Events) != 2 {
			t.Fatalf("account data %d events, want 2", len(resp.AccountData.Events))
		}
		tok, _ := ParseToken(resp.NextBatch)
		if tok.Pos(StreamAccountData) != 2 || tok.Pos(StreamTimeline) != 5 {
			t.Fatalf("next_batch %s", resp.NextBatch)
		}
	})
	since := Token{}.With(StreamTimeline, 5).With(StreamAccountData, 2).With(StreamToDevice, 7)
	t.Run("nothing new is empty and keeps unsourced positions", func(t *testing.T) {
		resp, err := s.Sync(ctx, Request{User: user, Since: since.String()})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.empty || len(resp.AccountData.Events) != 0 {
			t.Fatalf("empty %v, %d events", resp.empty, len(resp.AccountData.Events))
		}
		if resp.NextBatch != since.String() {
			t.Fatalf("next_batch %s, want %s", resp.NextBatch, since)
		}
	})
	t.Run("a change in the source wakes a long-poll", func(t *testing.T) {
		done := make(chan *Response, 1)
		go func() {
			resp, err := s.Sync(ctx, Request{User: user, Since: since.String(), Timeout: 10 * time.Second})
			if err != nil {
				t.Error(err)
			}
			done <- resp
		}()
		waitRegistered(t, n, 1)
		src.pos.Store(3)
		n.Notify(Change{Stream: StreamAccountData, Pos: 3, Users: []id.UserID{user}})
		resp := <-done
		if len(resp.AccountData.Events) != 1 {
			t.Fatalf("%d events, want the one of position 3", len(resp.AccountData.Events))
		}
		tok, _ := ParseToken(resp.NextBatch)
		if tok.Pos(StreamAccountData) != 3 {
			t.Fatalf("next_batch %s", resp.NextBatch)
		}
	})
	t.Run("a since ahead of the source starts the stream again", func(t *testing.T) {
		ahead := since.With(StreamAccountData, 99)
		resp, err := s.Sync(ctx, Request{User: user, Since: ahead.String()})
		if err != nil {
			t.Fatal(err)
		}
		last := src.asked[len(src.asked)-1]
		if !last.Initial || last.Since != 0 || len(resp.AccountData.Events) != 3 {
			t.Fatalf("asked %+v, %d events", last, len(resp.AccountData.Events))
		}
	})
}
