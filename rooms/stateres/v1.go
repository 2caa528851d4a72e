package stateres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"fmt"
	"slices"
	"strings"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// resolveV1 is the original state resolution of room version 1 (spec
// rooms/v1 "State resolution"). It is known to reset state; it exists so
// that version 1 rooms resolve as every other server resolves them.
//
// R starts as the union of the states without the conflicting keys (a key
// conflicts when two states hold different events for it; a key only some
// states hold does not conflict). Power levels conflicts are resolved
// first, then join rules, then each member's, each by ascending depth and
// descending sha1(event_id): the first event is taken, then every next one
// while the authorisation rules allow it in R. Every other conflict takes the
// event of highest depth and lowest sha1(event_id) that R allows.
func resolveV1(ctx context.Context, rv roomversion.Version, check CheckFunc, stateSets []StateMap, src EventSource) (StateMap, error) {
	r := make(StateMap)
	conflicts := make(map[auth.StateKey][]id.EventID)
	for _, s := range stateSets {
		for k, e := range s {
			if cur, ok := r[k]; ok && cur != e {
				delete(r, k)
				conflicts[k] = []id.EventID{cur, e}
				continue
			}
			if list, ok := conflicts[k]; ok {
				if !slices.Contains(list, e) {
					conflicts[k] = append(list, e)
				}
				continue
			}
			r[k] = e
		}
	}
	if len(conflicts) == 0 {
		return r, nil
	}

	g := newGraph(src)
	var ids []id.EventID
	for _, list := range conflicts {
		ids = append(ids, list...)
	}
	if err := g.load(ctx, ids); err != nil {
		return nil, err
	}
	view := &v1State{ctx: ctx, g: g, r: r}

	keys := make([]auth.StateKey, 0, len(conflicts))
	for k := range conflicts {
		keys = append(keys, k)
	}
	rank := func(k auth.StateKey) int {
		switch {
		case k.Type == typePowerLevels && k.StateKey == "":
			return 0
		case k.Type == typeJoinRules && k.StateKey == "":
			return 1
		case k.Type == typeMember:
			return 2
		}
		return 3
	}
	slices.SortFunc(keys, func(a, b auth.StateKey) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a.Type, b.Type), strings.Compare(a.StateKey, b.StateKey))
	})

	for _, k := range keys {
		list := make([]int32, len(conflicts[k]))
		for i, e := range conflicts[k] {
			list[i] = g.index[e]
		}
		if rank(k) < 3 {
			// Ascending depth, then descending sha1(event_id).
			slices.SortFunc(list, func(a, b int32) int {
				return cmp.Or(cmp.Compare(g.nodes[a].ev.Depth(), g.nodes[b].ev.Depth()), -compareSHA1(g.nodes[a].id, g.nodes[b].id))
			})
			r[k] = g.nodes[list[0]].id
			for _, e := range list[1:] {
				if check(rv, g.nodes[e].ev, view) != nil {
					break
				}
				r[k] = g.nodes[e].id
			}
		} else {
			// Descending depth, then ascending sha1(event_id); the first
			// that passes.
			slices.SortFunc(list, func(a, b int32) int {
				return cmp.Or(-cmp.Compare(g.nodes[a].ev.Depth(), g.nodes[b].ev.Depth()), compareSHA1(g.nodes[a].id, g.nodes[b].id))
			})
			for _, e := range list {
				if check(rv, g.nodes[e].ev, view) == nil {
					r[k] = g.nodes[e].id
					break
				}
			}
		}
		if view.err != nil {
			return nil, view.err
		}
	}
	return r, nil
}

func compareSHA1(a, b id.EventID) int {
	ha, hb := sha1.Sum([]byte(a)), sha1.Sum([]byte(b))
	return bytes.Compare(ha[:], hb[:])
}

// v1State is the resolved-so-far state R seen by the authorisation rules;
// it loads the events it is asked for on demand, since v1 checks only read
// the few keys the rules need.
type v1State struct {
	ctx context.Context
	g   *graph
	r   StateMap
	err error
}

func (s *v1State) StateEvent(eventType, stateKey string) auth.Event {
	e, ok := s.r[auth.StateKey{Type: eventType, StateKey: stateKey}]
	if !ok || s.err != nil {
		return nil
	}
	if err := s.g.load(s.ctx, []id.EventID{e}); err != nil {
		s.err = fmt.Errorf("stateres: v1 state event: %w", err)
		return nil
	}
	return s.g.nodes[s.g.index[e]].ev
}
