package stateres

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

var propertyUsers = []id.UserID{alice, bob, charlie, zara, evelyn, "@f:f.example", "@g:g.example"}

// randomForks builds a room with a few members and forks that branch from
// each other at random points, each adding random power level, join rule,
// membership and topic changes — allowed or not: state sets may hold
// anything, and the result must still be deterministic.
func randomForks(t *testing.T, version roomversion.ID, rng *rand.Rand) (*testRoom, []StateMap) {
	t.Helper()
	r := newTestRoom(t, version)
	s := r.create()
	for _, u := range propertyUsers[1:5] {
		s = r.send(s, member(u, "join", u, "J"+u.Localpart()))
	}
	branches := []StateMap{s}
	n := 0
	name := func(p string) string { n++; return fmt.Sprintf("%s%d", p, n) }
	for range 2 + rng.IntN(3) {
		st := branches[rng.IntN(len(branches))]
		for range 1 + rng.IntN(6) {
			u := propertyUsers[rng.IntN(len(propertyUsers))]
			ts := int64(rng.IntN(5) + 1000) // collisions exercise the id tie-break
			var e ev
			switch rng.IntN(5) {
			case 0:
				users := map[id.UserID]int{}
				if !r.rv.CreateEventDefinesRoomID {
					users[alice] = 100
				}
				for _, o := range propertyUsers[1:] {
					if rng.IntN(2) == 0 {
						users[o] = rng.IntN(4) * 25
					}
				}
				e = powerLevels(name("P"), u, users)
			case 1:
				e = joinRules(name("JR"), u, []string{"public", "invite", "knock"}[rng.IntN(3)])
			case 2:
				target := propertyUsers[rng.IntN(len(propertyUsers))]
				e = member(target, []string{"join", "leave", "ban", "invite"}[rng.IntN(4)], u, name("M"))
			default:
				e = topic(name("T"), u, "t")
			}
			e.ts = ts
			st = r.send(st, e)
			if rng.IntN(3) == 0 {
				branches = append(branches, st)
			}
		}
		branches = append(branches, st)
	}
	// The forks are the last few branches.
	k := 2 + rng.IntN(2)
	if k > len(branches) {
		k = len(branches)
	}
	return r, branches[len(branches)-k:]
}

// TestResultIndependentOfOrder: shuffling the state sets, the auth_events
// lists and the batches the source answers in (so the order events are
// numbered in) must not change the result.
func TestResultIndependentOfOrder(t *testing.T) {
	for _, version := range []roomversion.ID{"1", "10", "12"} {
		t.Run("room version "+string(version), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(42, uint64(len(version))))
			for round := range 40 {
				r, sets := randomForks(t, version, rng)
				want, err := Resolve(context.Background(), r.rv, sets, r)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				for shuffle := range 10 {
					shuffled := make([]StateMap, len(sets))
					for i, j := range rng.Perm(len(sets)) {
						shuffled[i] = sets[j]
					}
					for _, e := range r.events {
						rng.Shuffle(len(e.authIDs), func(i, j int) { e.authIDs[i], e.authIDs[j] = e.authIDs[j], e.authIDs[i] })
					}
					src := &generousSource{r: r, rng: rng}
					got, err := Resolve(context.Background(), r.rv, shuffled, src)
					if err != nil {
						t.Fatalf("round %d shuffle %d: %v", round, shuffle, err)
					}
					if !maps.Equal(got, want) {
						t.Fatalf("round %d shuffle %d: result depends on order:\n got %v\nwant %v", round, shuffle, got, want)
					}
				}
			}
		})
	}
}

// generousSource answers each request with random extra events of the room,
// as a source that prefetches auth chains would: events arrive in different
// batches, and are numbered in a different order, every time.
type generousSource struct {
	r   *testRoom
	rng *rand.Rand
}

func (s *generousSource) Events(ctx context.Context, ids []id.EventID) (map[id.EventID]auth.Event, error) {
	all, err := s.r.Events(ctx, ids)
	if err != nil {
		return nil, err
	}
	for e, te := range s.r.events {
		if s.rng.IntN(4) == 0 {
			all[e] = te
		}
	}
	return all, nil
}

// FuzzResolveOrderIndependent explores more random rooms than the property
// test: go test ./rooms/stateres -fuzz FuzzResolveOrderIndependent
func FuzzResolveOrderIndependent(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3} {
		f.Add(seed, uint8(10))
		f.Add(seed, uint8(12))
		f.Add(seed, uint8(1))
	}
	f.Fuzz(func(t *testing.T, seed uint64, version uint8) {
		rv := roomversion.ID(fmt.Sprint(version%12 + 1))
		rng := rand.New(rand.NewPCG(seed, 7))
		r, sets := randomForks(t, rv, rng)
		want, err := Resolve(context.Background(), r.rv, sets, r)
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(sets)
		for _, e := range r.events {
			slices.Reverse(e.authIDs)
		}
		got, err := Resolve(context.Background(), r.rv, sets, &generousSource{r: r, rng: rng})
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("room version %s: result depends on order:\n got %v\nwant %v", rv, got, want)
		}
	})
}
