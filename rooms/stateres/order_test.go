package stateres

import (
	"context"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
)

// loadNamed loads the named events and their auth closure and returns
// their nodes in the order given.
func loadNamed(t *testing.T, r *testRoom, names ...string) (*graph, []int32) {
	t.Helper()
	g := newGraph(r)
	if err := g.loadAuthClosure(context.Background(), r.ids(names...)); err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(names))
	for i, n := range names {
		out[i] = g.index[r.eventID(n)]
	}
	return g, out
}

func TestReverseTopologicalPowerOrder(t *testing.T) {
	t.Run("auth events come first whatever their sender's power", func(t *testing.T) {
		r, base := baseRoom(t)
		// bob (50) changes the power levels; alice (100) then changes the
		// join rules citing them; independently alice bans zara.
		withX := r.send(base, powerLevels("X", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 1}))
		r.send(withX, joinRules("Y", alice, "invite"))
		r.send(base, member(zara, "ban", alice, "Z"))
		g, ns := loadNamed(t, r, "Y", "X", "Z")
		got := reverseTopologicalPowerOrder(g, newPowerCache(r.rv, g, -1), ns)
		want := r.ids("Z", "X", "Y")
		if ids := g.ids(got); !slices.Equal(ids, want) {
			t.Errorf("order = %v, want %v", ids, want)
		}
	})
	t.Run("room version 12 creators outrank any listed level", func(t *testing.T) {
		r := newTestRoom(t, "12")
		s := r.create()
		s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{bob: 100}))
		s = r.send(s, member(bob, "join", bob, "IMB"))
		// bob's is earlier and has the smaller id; alice is still first.
		r.send(s, ev{name: "A", typ: typeJoinRules, stateKey: sk(""), sender: bob, content: `{"join_rule":"invite"}`, ts: 1})
		r.send(s, ev{name: "B", typ: typeJoinRules, stateKey: sk(""), sender: alice, content: `{"join_rule":"knock"}`, ts: 2})
		g, ns := loadNamed(t, r, "A", "B")
		if err := g.loadAuthClosure(context.Background(), r.ids("CREATE")); err != nil {
			t.Fatal(err) // v12 events do not cite it: load it as Resolve does
		}
		create := g.index[r.eventID("CREATE")]
		got := g.ids(reverseTopologicalPowerOrder(g, newPowerCache(r.rv, g, create), ns))
		if want := r.ids("B", "A"); !slices.Equal(got, want) {
			t.Errorf("order = %v, want %v", got, want)
		}
	})
}

func TestMainlineOrder(t *testing.T) {
	r, base := baseRoom(t) // power levels IPOWER, then PA
	p1 := r.send(base, powerLevels("P1", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 5}))
	p2 := r.send(p1, powerLevels("P2", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 6}))
	r.send(p2, ev{name: "ON_P2", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{}`, ts: 1})
	r.send(p1, ev{name: "ON_P1", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{}`, ts: 2})
	// A power levels event off the mainline, citing P1: it sits where P1 does.
	side := r.send(p1, powerLevels("SIDE", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 7}))
	r.send(side, ev{name: "ON_SIDE", typ: "m.room.topic", stateKey: sk(""), sender: bob, content: `{}`, ts: 3})
	// No power levels in its auth events at all: position ∞, first.
	r.send(base, ev{name: "NO_PL", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{}`, ts: 4, auth: []string{"CREATE", "IMA"}})

	g, ns := loadNamed(t, r, "ON_P2", "ON_SIDE", "ON_P1", "NO_PL", "P2")
	got := g.ids(mainlineOrder(g, g.index[r.eventID("P2")], ns))
	// P2 itself is not in its own list: it starts from P1 (position 1).
	// ON_P1 (ts 2), P2 (ts of its creation, later) and ON_SIDE (via SIDE →
	// P1, ts 3) share position 1 and go by timestamp.
	want := r.ids("NO_PL", "ON_P1", "ON_SIDE", "P2", "ON_P2")
	if r.events[r.eventID("P2")].ts < 3 {
		t.Fatalf("test setup: P2's timestamp %d should be after ON_SIDE's", r.events[r.eventID("P2")].ts)
	}
	if !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}
