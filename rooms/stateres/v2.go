package stateres

import (
	"context"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// resolveV2 is state resolution v2 (room versions 2–11, spec
// rooms/v2 "State resolution") and, with v21, v2.1 (room version 12, spec
// rooms/v12 "State resolution"): the full conflicted set also holds the
// conflicted state subgraph, and the power events' iterative auth checks
// start from an empty state instead of the unconflicted state map.
func resolveV2(ctx context.Context, rv roomversion.Version, check CheckFunc, stateSets []StateMap, src EventSource, v21 bool) (StateMap, error) {
	unconflicted, conflictedIDs := split(stateSets)
	if len(conflictedIDs) == 0 {
		return unconflicted, nil
	}

	// Every event of every set and its whole auth chain, in batches.
	g := newGraph(src)
	// An event is either unconflicted or conflicted, so this has no
	// duplicates.
	all := make([]id.EventID, 0, len(unconflicted)+len(conflictedIDs))
	for _, e := range unconflicted {
		all = append(all, e)
	}
	all = append(all, conflictedIDs...)
	if err := g.loadAuthClosure(ctx, all); err != nil {
		return nil, err
	}
	conflicted := make([]int32, len(conflictedIDs))
	for i, e := range conflictedIDs {
		conflicted[i] = g.index[e]
	}

	full := make([]bool, len(g.nodes)) // the full conflicted set, by node
	for _, c := range conflicted {
		full[c] = true
	}
	for _, d := range authDifference(g, stateSets) {
		full[d] = true
	}
	if v21 {
		for _, s := range conflictedSubgraph(g, conflicted) {
			full[s] = true
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	create := int32(-1)
	if rv.CreateEventDefinesRoomID {
		create = roomCreateEvent(g, stateSets)
	}
	pc := newPowerCache(rv, g, create)

	// Step 1: the power events of the full conflicted set and the parts of
	// their auth chains inside it, in reverse topological power order.
	inX := make([]bool, len(g.nodes))
	var x []int32
	var stack []int32
	seen := make([]bool, len(g.nodes))
	for n := range g.nodes {
		if !full[n] || !g.isPowerEvent(int32(n)) {
			continue
		}
		if !inX[n] {
			inX[n] = true
			x = append(x, int32(n))
		}
		stack = append(stack[:0], g.nodes[n].auth...)
		for len(stack) > 0 {
			a := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[a] {
				continue
			}
			seen[a] = true
			if full[a] && !inX[a] {
				inX[a] = true
				x = append(x, a)
			}
			stack = append(stack, g.nodes[a].auth...)
		}
	}
	sortedX := reverseTopologicalPowerOrder(g, pc, x)

	// Step 2: iterative auth checks from the unconflicted state map (v2) or
	// from nothing (v2.1).
	state := make(partialState, len(unconflicted))
	if !v21 {
		for k, e := range unconflicted {
			if n, ok := g.index[e]; ok {
				state[k] = n
			}
		}
	}
	iterativeAuthChecks(rv, check, g, create, state, sortedX)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Step 3: every other event of the full conflicted set by mainline
	// order of the partially resolved power levels.
	var rest []int32
	for n := range g.nodes {
		if full[n] && !inX[n] {
			rest = append(rest, int32(n))
		}
	}
	pl := int32(-1)
	if n, ok := state[auth.StateKey{Type: typePowerLevels}]; ok {
		pl = n
	}
	// Step 4: iterative auth checks on the partially resolved state.
	iterativeAuthChecks(rv, check, g, create, state, mainlineOrder(g, pl, rest))

	// Step 5: the unconflicted state map wins.
	out := make(StateMap, len(state)+len(unconflicted))
	for k, n := range state {
		out[k] = g.nodes[n].id
	}
	for k, e := range unconflicted {
		out[k] = e
	}
	return out, nil
}

// authDifference is ∪Cᵢ − ∩Cᵢ where Cᵢ, the full auth chain of state set
// Sᵢ, is the union of the auth chains of its events (spec "Auth
// difference"). Cᵢ here also holds Sᵢ's own events. Read strictly, an auth
// chain stops short of the event itself, which would put into the
// difference an event every state holds (bob's join, say) merely because
// only one fork has an event citing it — common history the forks agree on.
// Counting each set's events as reachable from the set is how deployed
// servers compute the difference (Synapse's auth chain index), and agreeing
// with them is what convergence needs. An event every set holds is then in
// every Cᵢ, and conflicted events are in the full conflicted set anyway.
// One walk per set, each visiting an event at most once; count[n] is the
// number of chains n is in.
func authDifference(g *graph, stateSets []StateMap) []int32 {
	count := make([]int32, len(g.nodes))
	stamp := make([]int32, len(g.nodes))
	var stack []int32
	for i, s := range stateSets {
		mark := int32(i + 1)
		stack = stack[:0]
		for _, e := range s {
			stack = append(stack, g.index[e])
		}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if stamp[n] == mark {
				continue
			}
			stamp[n] = mark
			count[n]++
			stack = append(stack, g.nodes[n].auth...)
		}
	}
	var diff []int32
	k := int32(len(stateSets))
	for n, c := range count {
		if c > 0 && c < k {
			diff = append(diff, int32(n))
		}
	}
	return diff
}

// conflictedSubgraph is every event on an auth_events path from one
// conflicted state event to another, endpoints included (spec v12
// "Conflicted state subgraph"): the events reachable from the conflicted
// set that themselves reach it.
func conflictedSubgraph(g *graph, conflicted []int32) []int32 {
	const (
		unknown = iota
		visiting
		reaches
		noReach
	)
	isConflicted := make([]bool, len(g.nodes))
	for _, c := range conflicted {
		isConflicted[c] = true
	}
	status := make([]uint8, len(g.nodes))
	// Iterative post-order DFS: a node reaches the conflicted set when one
	// of its auth events is conflicted or reaches it.
	type frame struct {
		n    int32
		next int
	}
	var stack []frame
	for _, c := range conflicted {
		if status[c] != unknown {
			continue
		}
		status[c] = visiting
		stack = append(stack[:0], frame{n: c})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			authOf := g.nodes[top.n].auth
			if top.next < len(authOf) {
				a := authOf[top.next]
				top.next++
				if status[a] == unknown {
					status[a] = visiting
					stack = append(stack, frame{n: a})
				}
				continue
			}
			st := uint8(noReach)
			for _, a := range authOf {
				if isConflicted[a] || status[a] == reaches {
					st = reaches
					break
				}
			}
			status[top.n] = st
			stack = stack[:len(stack)-1]
		}
	}
	var out []int32
	for n, st := range status {
		// Reached from a conflicted event (st != unknown) and reaching one,
		// or a conflicted event itself.
		if st == reaches || (st != unknown && isConflicted[n]) {
			out = append(out, int32(n))
		}
	}
	return out
}

// roomCreateEvent finds the room's m.room.create event for room version 12,
// where auth events never cite it: the one the state sets hold. Should they
// disagree, the one whose id the room id is derived from (room id "!x" for
// event id "$x", spec v12 "Event format") wins, else the smallest id.
func roomCreateEvent(g *graph, stateSets []StateMap) int32 {
	key := auth.StateKey{Type: typeCreate}
	var roomID id.RoomID
	var candidates []int32
	for _, s := range stateSets {
		for _, e := range s {
			if rid := g.nodes[g.index[e]].ev.RoomID(); rid != "" {
				roomID = rid
				break
			}
		}
		if e, ok := s[key]; ok && !slices.Contains(candidates, g.index[e]) {
			candidates = append(candidates, g.index[e])
		}
	}
	best := int32(-1)
	for _, n := range candidates {
		if roomID != "" && "!"+strings.TrimPrefix(string(g.nodes[n].id), "$") == string(roomID) {
			return n
		}
		if best < 0 || g.nodes[n].id < g.nodes[best].id {
			best = n
		}
	}
	return best
}
