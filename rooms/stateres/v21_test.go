package stateres

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

// resolveBoth runs the v2 and the v2.1 algorithm over the same version 12
// DAG, so that a test can show where they part.
func resolveBoth(t *testing.T, r *testRoom, sets ...StateMap) (v2, v21 StateMap) {
	t.Helper()
	var err error
	if v2, err = resolveV2(context.Background(), r.rv, auth.Check, sets, r, false); err != nil {
		t.Fatalf("v2: %v", err)
	}
	if v21, err = resolveV2(context.Background(), r.rv, auth.Check, sets, r, true); err != nil {
		t.Fatalf("v2.1: %v", err)
	}
	return v2, v21
}

// TestConflictedStateSubgraphChangesOutcome: one state holds P2 (bob's power
// levels, allowed by P1 where alice made bob a moderator), the other was
// reset to the room's first power levels P0 but still holds alice's topic
// citing P1. P1 is in both full auth chains, so it is not in the auth
// difference: v2 checks P2 against P0, where bob has no power, and keeps the
// reset. P1 lies on the auth path from P2 to P0, so v2.1's conflicted state
// subgraph brings it in, P1 then P2 pass, and P2 is the result.
func TestConflictedStateSubgraphChangesOutcome(t *testing.T) {
	r := newTestRoom(t, "12")
	s := r.create() // IPOWER is P0
	s = r.send(s, member(bob, "join", bob, "IMB"))
	s = r.send(s, member(charlie, "join", charlie, "IMC"))
	s = r.send(s, powerLevels("P1", alice, map[id.UserID]int{bob: 50}))
	s = r.send(s, topic("T", alice, "cites P1"))
	withP2 := r.send(s, powerLevels("P2", bob, map[id.UserID]int{bob: 50, charlie: 50}))
	reset := cloneMap(s)
	reset[plKey] = r.eventID("IPOWER")

	v2, v21 := resolveBoth(t, r, withP2, reset)
	r.want(v2, plKey, "IPOWER")
	r.want(v21, plKey, "P2")
	r.want(r.resolve(withP2, reset), plKey, "P2") // Resolve picks v2.1 for room version 12
	r.want(v21, topicKey, "T")
}

// TestEmptyStartChangesOutcome: bob changed the join rules in one fork while
// alice changed them and banned bob in the other; both states hold the ban
// (unconflicted). v2 checks the racing join rules on top of the
// unconflicted state, where bob is banned, and drops his. v2.1 starts the
// power events from empty state, so bob's membership comes from his event's
// auth events (his join), his change passes, and being ordered after
// alice's (she is a creator, infinitely powerful) it wins.
func TestEmptyStartChangesOutcome(t *testing.T) {
	r := newTestRoom(t, "12")
	s := r.create()
	s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{bob: 50}))
	s = r.send(s, member(bob, "join", bob, "IMB"))
	fork1 := r.send(s, joinRules("JRBOB", bob, "invite"))
	fork2 := r.send(s, joinRules("JRALICE", alice, "knock"))
	fork2 = r.send(fork2, member(bob, "ban", alice, "BAN"))
	fork1[memberKey(bob)] = r.eventID("BAN") // fork 1 has since learned of the ban

	v2, v21 := resolveBoth(t, r, fork1, fork2)
	r.want(v2, jrKey, "JRALICE")
	r.want(v21, jrKey, "JRBOB")
	r.want(v2, memberKey(bob), "BAN")
	r.want(v21, memberKey(bob), "BAN")
}

// TestConflictedSubgraph checks the subgraph itself on a chain
// A ← B ← C ← D (D cites C …) with B and D conflicted: B, C and D are on a
// path between conflicted events, A (below both) is not.
func TestConflictedSubgraph(t *testing.T) {
	r := newTestRoom(t, "12")
	s := r.create()
	a := r.send(s, topic("A", alice, "a"))
	b := r.send(a, ev{name: "B", typ: "m.room.name", stateKey: sk(""), sender: alice, content: `{}`, auth: []string{"A"}})
	c := r.send(b, ev{name: "C", typ: "x.c", stateKey: sk(""), sender: alice, content: `{}`, auth: []string{"B"}})
	r.send(c, ev{name: "D", typ: "x.d", stateKey: sk(""), sender: alice, content: `{}`, auth: []string{"C"}})

	g := newGraph(r)
	if err := g.loadAuthClosure(context.Background(), r.ids("B", "D")); err != nil {
		t.Fatal(err)
	}
	got := map[id.EventID]bool{}
	for _, n := range conflictedSubgraph(g, []int32{g.index[r.eventID("B")], g.index[r.eventID("D")]}) {
		got[g.nodes[n].id] = true
	}
	for _, name := range []string{"B", "C", "D"} {
		if !got[r.eventID(name)] {
			t.Errorf("%s missing from the conflicted subgraph %v", name, got)
		}
	}
	if got[r.eventID("A")] || len(got) != 3 {
		t.Errorf("subgraph = %v, want exactly B, C, D", got)
	}
}
