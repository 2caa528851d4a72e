package syncer

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
)

// limitedSource is a stream whose every position is one to-device
// message; a response carries at most two, holding the token at the last.
type limitedSource struct {
	pos   int64
	asked []StreamQuery
}

func (l *limitedSource) Stream() Stream                            { return StreamToDevice }
func (l *limitedSource) CurrentPos(context.Context) (int64, error) { return l.pos, nil }
func (l *limitedSource) Fill(_ context.Context, q StreamQuery, resp *Response) error {
	l.asked = append(l.asked, q)
	for p := q.Since + 1; p <= q.Pos; p++ {
		if len(resp.ToDevice.Events) == 2 {
			resp.HoldPos(StreamToDevice, p-1)
			break
		}
		raw, _ := json.Marshal(map[string]int64{"n": p})
		resp.ToDevice.Events = append(resp.ToDevice.Events, raw)
	}
	return nil
}

// TestHoldPos: a source that delivers part of its range keeps the rest
// for the next sync through next_batch; sources see the timeline range
// and whether the request had a since token.
func TestHoldPos(t *testing.T) {
	ctx := context.Background()
	user := id.UserID("@a:hs")
	src := &limitedSource{pos: 5}
	s, _ := newTestService(src)

	since := ""
	var got []string
	for range 4 {
		resp, err := s.Sync(ctx, Request{User: user, Device: "D", Since: since})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.ToDevice.Events {
			got = append(got, string(e))
		}
		since = resp.NextBatch
	}
	want := []string{`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`}
	if len(got) != len(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("messages %v, want %v", got, want)
		}
	}
	tok, _ := ParseToken(since)
	if tok.Pos(StreamToDevice) != 5 || tok.Pos(StreamTimeline) != 5 {
		t.Fatalf("final token %s", since)
	}
	first, second := src.asked[0], src.asked[1]
	if !first.NoSince || second.NoSince || second.Since != 2 {
		t.Fatalf("queries %+v then %+v", first, second)
	}
	if second.TimelineSince != 5 || second.TimelinePos != 5 || first.TimelineSince != 0 {
		t.Fatalf("timeline ranges %d..%d then %d..%d", first.TimelineSince, first.TimelinePos, second.TimelineSince, second.TimelinePos)
	}
}
