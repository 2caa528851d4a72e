package stateres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
)

// graph holds every event one resolution reads, numbered densely so that the
// hot loops (auth chain walks, orderings) work on int32 indices and slices
// instead of string-keyed maps. Node numbers depend on the order events were
// loaded in; nothing in the algorithms depends on them (every ordering ends
// with the event id tie-break).
type graph struct {
	src   EventSource
	nodes []node
	index map[id.EventID]int32
}

type node struct {
	ev       auth.Event
	id       id.EventID
	key      auth.StateKey
	isState  bool
	rejected bool
	// auth are the node's auth events; filled once the auth closure has
	// been loaded (authLoaded), -1-free: unknown auth events make loading fail.
	auth       []int32
	authLoaded bool
	// plAuth is the m.room.power_levels event among the auth events, -1 if none.
	plAuth int32
}

func newGraph(src EventSource) *graph {
	return &graph{src: src, index: make(map[id.EventID]int32)}
}

// load makes sure every id is a node, fetching the unknown ones in one batch.
// It does not follow auth events.
func (g *graph) load(ctx context.Context, ids []id.EventID) error {
	var want []id.EventID
	var asked map[id.EventID]struct{}
	for _, e := range ids {
		if _, ok := g.index[e]; ok {
			continue
		}
		if asked == nil {
			asked = make(map[id.EventID]struct{}, len(ids))
		}
		if _, dup := asked[e]; !dup {
			asked[e] = struct{}{}
			want = append(want, e)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if g.nodes == nil {
		g.nodes = make([]node, 0, 2*len(want))
	}
	got, err := g.src.Events(ctx, want)
	if err != nil {
		return fmt.Errorf("stateres: load %d events: %w", len(want), err)
	}
	for _, e := range want {
		if ev, ok := got[e]; !ok || ev == nil {
			return fmt.Errorf("%w %s", ErrMissingEvent, e)
		}
	}
	// Keep everything that came back, asked for or not: a source may
	// answer with whole auth chains to save round trips.
	for e, ev := range got {
		if _, ok := g.index[e]; ok || ev == nil {
			continue
		}
		n := node{ev: ev, id: e, plAuth: -1}
		if sk := ev.StateKey(); sk != nil {
			n.isState = true
			n.key = auth.StateKey{Type: ev.Type(), StateKey: *sk}
		}
		if r, ok := ev.(Rejecter); ok {
			n.rejected = r.Rejected()
		}
		g.index[e] = int32(len(g.nodes))
		g.nodes = append(g.nodes, n)
	}
	return nil
}

// loadAuthClosure loads ids and, layer by layer, all their auth events, and
// links each node to its auth events. One EventSource call per layer.
func (g *graph) loadAuthClosure(ctx context.Context, ids []id.EventID) error {
	if err := g.load(ctx, ids); err != nil {
		return err
	}
	frontier := make([]int32, 0, len(ids))
	for _, e := range ids {
		frontier = append(frontier, g.index[e])
	}
	for len(frontier) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		var need []id.EventID
		for _, n := range frontier {
			if g.nodes[n].authLoaded {
				continue
			}
			for _, a := range g.nodes[n].ev.AuthEventIDs() {
				if _, ok := g.index[a]; !ok {
					need = append(need, a)
				}
			}
		}
		if err := g.load(ctx, need); err != nil {
			return err
		}
		// One backing array per layer instead of one slice per event.
		total := 0
		for _, n := range frontier {
			if !g.nodes[n].authLoaded {
				total += len(g.nodes[n].ev.AuthEventIDs())
			}
		}
		arena := make([]int32, 0, total)
		var next []int32
		for _, n := range frontier {
			nd := &g.nodes[n]
			if nd.authLoaded {
				continue
			}
			nd.authLoaded = true
			authIDs := nd.ev.AuthEventIDs()
			start := len(arena)
			nd.auth = arena[start : start : start+len(authIDs)]
			for _, a := range authIDs {
				ai := g.index[a]
				if slices.Contains(nd.auth, ai) {
					continue
				}
				nd.auth = append(nd.auth, ai)
				arena = arena[:start+len(nd.auth)]
				an := &g.nodes[ai]
				if an.isState && an.key.Type == typePowerLevels && an.key.StateKey == "" && nd.plAuth < 0 {
					nd.plAuth = ai
				}
				if !an.authLoaded {
					next = append(next, ai)
				}
			}
		}
		frontier = next
	}
	return nil
}

func (g *graph) ids(ns []int32) []id.EventID {
	out := make([]id.EventID, len(ns))
	for i, n := range ns {
		out[i] = g.nodes[n].id
	}
	return out
}

// less is the final tie-break of every ordering: origin_server_ts, then
// event id (spec "Reverse topological power ordering", "Mainline ordering").
func (g *graph) tsIDLess(a, b int32) bool {
	ta, tb := g.nodes[a].ev.OriginServerTS(), g.nodes[b].ev.OriginServerTS()
	if ta != tb {
		return ta < tb
	}
	return g.nodes[a].id < g.nodes[b].id
}

func sortIDs(ids []id.EventID) {
	slices.SortFunc(ids, func(a, b id.EventID) int { return strings.Compare(string(a), string(b)) })
}

const (
	typeCreate      = auth.TypeCreate
	typePowerLevels = auth.TypePowerLevels
	typeJoinRules   = auth.TypeJoinRules
	typeMember      = auth.TypeMember
)
