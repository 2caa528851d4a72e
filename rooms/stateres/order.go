package stateres

import (
	"container/heap"
	"math"
	"slices"
)

// reverseTopologicalPowerOrder sorts events with Kahn's algorithm over the
// DAG their auth events form among themselves, always taking the smallest
// ready event: the sender with the greater power level first, then the
// smaller origin_server_ts, then the smaller event id (spec "Reverse
// topological power ordering"). Auth events come before the events they
// authorise. Only direct auth_events edges between members of the set count.
func reverseTopologicalPowerOrder(g *graph, pc *powerCache, events []int32) []int32 {
	in := make(map[int32]struct{}, len(events))
	for _, e := range events {
		in[e] = struct{}{}
	}
	// pending[e] counts e's auth events inside the set not yet emitted;
	// dependents[a] lists the events a is an auth event of.
	pending := make(map[int32]int, len(events))
	dependents := make(map[int32][]int32, len(events))
	for _, e := range events {
		for _, a := range g.nodes[e].auth {
			if _, ok := in[a]; ok {
				pending[e]++
				dependents[a] = append(dependents[a], e)
			}
		}
	}
	h := &nodeHeap{less: func(a, b int32) bool {
		pa, pb := pc.senderPower(a), pc.senderPower(b)
		if pa != pb {
			return pa > pb
		}
		return g.tsIDLess(a, b)
	}}
	for _, e := range events {
		if pending[e] == 0 {
			h.items = append(h.items, e)
		}
	}
	heap.Init(h)
	out := make([]int32, 0, len(events))
	for h.Len() > 0 {
		e := heap.Pop(h).(int32)
		out = append(out, e)
		for _, d := range dependents[e] {
			pending[d]--
			if pending[d] == 0 {
				heap.Push(h, d)
			}
		}
	}
	return out
}

// mainlineOrder sorts events by their mainline position relative to the
// power levels event pl (-1 when the partially resolved state has none),
// greater positions — older power levels — first, then origin_server_ts,
// then event id (spec "Mainline ordering").
func mainlineOrder(g *graph, pl int32, events []int32) []int32 {
	mainline := make(map[int32]int)
	for p, i := pl, 0; p >= 0; p, i = g.nodes[p].plAuth, i+1 {
		if _, seen := mainline[p]; seen {
			break // a cycle cannot happen in a valid auth DAG; do not loop on a bad one
		}
		mainline[p] = i
	}
	// memo holds the mainline position reached from a power levels event by
	// following power levels auth events, itself included.
	memo := make(map[int32]int)
	var fromPL func(p int32) int
	fromPL = func(p int32) int {
		var chain []int32
		pos := math.MaxInt
		for q := p; q >= 0; q = g.nodes[q].plAuth {
			if v, ok := memo[q]; ok {
				pos = v
				break
			}
			if v, ok := mainline[q]; ok {
				pos = v
				memo[q] = v
				break
			}
			if slices.Contains(chain, q) {
				break
			}
			chain = append(chain, q)
		}
		for _, q := range chain {
			memo[q] = pos
		}
		return pos
	}
	position := make(map[int32]int, len(events))
	for _, e := range events {
		// e itself is not part of its list, even when it is a power levels
		// event on the mainline: start from its power levels auth event.
		if p := g.nodes[e].plAuth; p >= 0 {
			position[e] = fromPL(p)
		} else {
			position[e] = math.MaxInt
		}
	}
	out := slices.Clone(events)
	slices.SortFunc(out, func(a, b int32) int {
		if pa, pb := position[a], position[b]; pa != pb {
			if pa > pb {
				return -1
			}
			return 1
		}
		if g.tsIDLess(a, b) {
			return -1
		}
		if g.tsIDLess(b, a) {
			return 1
		}
		return 0
	})
	return out
}

type nodeHeap struct {
	items []int32
	less  func(a, b int32) bool
}

func (h *nodeHeap) Len() int           { return len(h.items) }
func (h *nodeHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *nodeHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *nodeHeap) Push(x any)         { h.items = append(h.items, x.(int32)) }
func (h *nodeHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}
