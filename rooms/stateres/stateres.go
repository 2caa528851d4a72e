package stateres

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// StateMap is a room state: for every (type, state_key) the id of the state
// event that holds it.
type StateMap map[auth.StateKey]id.EventID

// EventSource gives state resolution the events it reads: the events of the
// state sets and, recursively, their auth events. Resolution asks in batches
// (one call per layer of the auth graph), so a database-backed source should
// answer each call with one query.
type EventSource interface {
	// Events returns the events it has among ids. Ids it does not know are
	// left out of the map; that is not an error (Resolve reports them). It
	// may return more events than asked for — whole auth chains, say — and
	// resolution keeps them instead of asking again.
	Events(ctx context.Context, ids []id.EventID) (map[id.EventID]auth.Event, error)
}

// Rejecter is implemented by events that know whether they were rejected
// (server-server API, "Rejection"). Resolution never uses a rejected event as
// an auth event during the iterative auth checks (spec "Rejected events");
// events that do not implement it count as not rejected.
type Rejecter interface {
	Rejected() bool
}

// CheckFunc is the authorisation rules: nil when ev is allowed by state.
// auth.Check is the one Parley uses.
type CheckFunc func(rv roomversion.Version, ev auth.Event, state auth.State) error

// ErrMissingEvent is returned (wrapped, with the event id) when an event of a
// state set or of its auth chain is not in the EventSource. A server must
// hold the full auth chain of every event it accepted, so this is a bug or a
// gap the caller must fill (by fetching from federation) before resolving.
var ErrMissingEvent = errors.New("stateres: missing event")

// Resolve computes the resolution of stateSets with the algorithm of the
// room version (rv.StateRes) and its authorisation rules (auth.Check). The
// result does not depend on the order of stateSets nor on the order in which
// events come back from events.
func Resolve(ctx context.Context, rv roomversion.Version, stateSets []StateMap, events EventSource) (StateMap, error) {
	return ResolveWith(ctx, rv, auth.Check, stateSets, events)
}

// ResolveWith is Resolve with other authorisation rules; tests and tools
// that audit a resolution use it.
//
// ResolveWith computes the resolution of stateSets with the algorithm of the
// room version (rv.StateRes) and the authorisation rules in check. The
// result does not depend on the order of stateSets nor on the order in which
// events come back from events.
func ResolveWith(ctx context.Context, rv roomversion.Version, check CheckFunc, stateSets []StateMap, events EventSource) (StateMap, error) {
	if check == nil {
		return nil, errors.New("stateres: no authorisation rules given")
	}
	switch len(stateSets) {
	case 0:
		return StateMap{}, nil
	case 1:
		return cloneMap(stateSets[0]), nil
	}
	switch rv.StateRes {
	case roomversion.StateResV1:
		return resolveV1(ctx, rv, check, stateSets, events)
	case roomversion.StateResV2:
		return resolveV2(ctx, rv, check, stateSets, events, false)
	case roomversion.StateResV2_1:
		return resolveV2(ctx, rv, check, stateSets, events, true)
	default:
		return nil, fmt.Errorf("stateres: room version %s has no known state resolution algorithm", rv.ID)
	}
}

func cloneMap(m StateMap) StateMap {
	out := make(StateMap, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// split divides the state sets into the unconflicted state map (keys present
// in every set with the same event) and the conflicted state set (every other
// event), spec "Unconflicted state map and conflicted state set".
// conflicted is sorted by event id so that callers iterate deterministically.
func split(stateSets []StateMap) (unconflicted StateMap, conflicted []id.EventID) {
	unconflicted = make(StateMap, len(stateSets[0]))
	seen := make(map[id.EventID]struct{})
	addConflicted := func(e id.EventID) {
		if _, ok := seen[e]; !ok {
			seen[e] = struct{}{}
			conflicted = append(conflicted, e)
		}
	}
	// A key can only be unconflicted if the first set has it.
	for k, v := range stateSets[0] {
		same := true
		for _, o := range stateSets[1:] {
			if ov, ok := o[k]; !ok || ov != v {
				same = false
				break
			}
		}
		if same {
			unconflicted[k] = v
		} else {
			addConflicted(v)
		}
	}
	for _, s := range stateSets[1:] {
		for k, v := range s {
			if u, ok := unconflicted[k]; ok && u == v {
				continue
			}
			addConflicted(v)
		}
	}
	sortIDs(conflicted)
	return unconflicted, conflicted
}

// After returns S′(E), the state after ev given the state before it: the
// same state for a message event, with ev's (type, state_key) entry
// replaced for a state event (spec "State resolution": the state before an
// event is the resolution of the states after its prev_events). before is
// not modified.
func After(before StateMap, ev auth.Event) StateMap {
	out := cloneMap(before)
	if sk := ev.StateKey(); sk != nil {
		out[auth.StateKey{Type: ev.Type(), StateKey: *sk}] = ev.EventID()
	}
	return out
}
