package stateres

import (
	"context"
	"errors"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// failingSource fails the test if resolution asks it for anything.
type failingSource struct{ t *testing.T }

func (s failingSource) Events(context.Context, []id.EventID) (map[id.EventID]auth.Event, error) {
	s.t.Helper()
	s.t.Error("the source was asked for events")
	return nil, errors.New("unexpected")
}

func TestResolveEdges(t *testing.T) {
	ctx := context.Background()
	rv := roomversion.MustLookup("10")
	a := StateMap{topicKey: "$a", plKey: "$p"}
	b := StateMap{topicKey: "$a", plKey: "$p", jrKey: "$j"}

	t.Run("no state sets resolve to empty state", func(t *testing.T) {
		got, err := Resolve(ctx, rv, nil, failingSource{t})
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v; want empty state", got, err)
		}
	})
	t.Run("one state set is its own resolution, copied", func(t *testing.T) {
		got, err := Resolve(ctx, rv, []StateMap{a}, failingSource{t})
		if err != nil || len(got) != 2 || got[topicKey] != "$a" {
			t.Fatalf("got %v, %v", got, err)
		}
		got[topicKey] = "$changed"
		if a[topicKey] != "$a" {
			t.Error("the result shares memory with the input")
		}
	})
	t.Run("agreeing sets are resolved without reading events", func(t *testing.T) {
		got, err := Resolve(ctx, rv, []StateMap{a, a}, failingSource{t})
		if err != nil || len(got) != 2 || got[plKey] != "$p" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("a key only some sets hold is conflicted in v2", func(t *testing.T) {
		_, conflicted := split([]StateMap{a, b})
		if len(conflicted) != 1 || conflicted[0] != "$j" {
			t.Fatalf("conflicted = %v, want [$j]", conflicted)
		}
	})
	t.Run("a missing event is reported", func(t *testing.T) {
		r, base := baseRoom(t)
		fork := r.send(base, topic("T", alice, "t"))
		fork[jrKey] = "$nowhere"
		_, err := Resolve(ctx, r.rv, []StateMap{base, fork}, r)
		if !errors.Is(err, ErrMissingEvent) {
			t.Fatalf("err = %v, want ErrMissingEvent", err)
		}
	})
	t.Run("a missing auth event is reported", func(t *testing.T) {
		r, base := baseRoom(t)
		fork := r.send(base, ev{name: "T", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{}`, auth: []string{"GONE"}})
		_, err := Resolve(ctx, r.rv, []StateMap{base, fork}, r)
		if !errors.Is(err, ErrMissingEvent) {
			t.Fatalf("err = %v, want ErrMissingEvent", err)
		}
	})
	t.Run("a cancelled context stops resolution", func(t *testing.T) {
		r, base := baseRoom(t)
		fork := r.send(base, topic("T", alice, "t"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Resolve(cctx, r.rv, []StateMap{base, fork}, r)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("an unknown algorithm is an error", func(t *testing.T) {
		_, err := Resolve(ctx, roomversion.Version{ID: "x"}, []StateMap{a, b}, failingSource{t})
		if err == nil {
			t.Fatal("no error for a version without a state resolution algorithm")
		}
	})
}

func TestAfter(t *testing.T) {
	r, base := baseRoom(t)
	msg := r.add(base, ev{name: "MSG", typ: "m.room.message", sender: alice, content: `{}`})
	tp := r.add(base, topic("T", alice, "t"))
	cases := []struct {
		name    string
		ev      *testEvent
		changed bool
	}{
		{"a message event leaves the state as it was", msg, false},
		{"a state event replaces its key", tp, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := After(base, tc.ev)
			if _, had := base[topicKey]; had {
				t.Fatal("After modified its input")
			}
			if tc.changed != (got[topicKey] == tc.ev.id) || len(got) != len(base)+btoi(tc.changed) {
				t.Errorf("After = %v", got)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
