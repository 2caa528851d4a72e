package stateres

import (
	"testing"

	"github.com/parleyhq/parley/id"
)

// TestWellKnownCases rebuilds, from the spec's rules, the scenarios state
// resolution test suites traditionally cover; each expectation is derived
// by hand from the v2 algorithm in its comment.
func TestWellKnownCases(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ban vs power level", func(t *testing.T) {
			r, base := baseRoom(t)
			// alice bans bob while bob, still 50, edits the power levels.
			// The ban (sender 100) is ordered before bob's change (50),
			// which then fails: bob is no longer in the room.
			fork1 := r.send(base, member(bob, "ban", alice, "MB"))
			fork2 := r.send(base, powerLevels("PB", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 50}))
			got := r.resolve(fork1, fork2)
			r.want(got, memberKey(bob), "MB")
			r.want(got, plKey, "PA")
		}},
		{"topic reset", func(t *testing.T) {
			r, base := baseRoom(t)
			base = r.send(base, topic("T1", alice, "one"))
			// bob changes the topic while alice bans him: the ban is a
			// power event and goes first, bob's topic then fails, and the
			// topic falls back to T1.
			fork1 := r.send(base, topic("T2", bob, "two"))
			fork2 := r.send(base, member(bob, "ban", alice, "MB"))
			got := r.resolve(fork1, fork2)
			r.want(got, memberKey(bob), "MB")
			r.want(got, topicKey, "T1")
		}},
		{"join rule evasion", func(t *testing.T) {
			r, base := baseRoom(t)
			// evelyn joins a public room just as alice makes it invite
			// only; the join rules (a power event) win, her join fails.
			fork1 := r.send(base, joinRules("JR", alice, "invite"))
			fork2 := r.send(base, member(evelyn, "join", evelyn, "ME"))
			got := r.resolve(fork1, fork2)
			r.want(got, jrKey, "JR")
			r.want(got, memberKey(evelyn), "")
		}},
		{"offtopic power levels", func(t *testing.T) {
			r, base := baseRoom(t)
			// Fork 2: bob raises charlie to 50, then charlie lowers himself
			// to 0. Fork 1 never saw either. PB is in the auth difference,
			// so it is ordered (and applied) before PC, which passes.
			fork2 := r.send(base, powerLevels("PB", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 50}))
			fork2 = r.send(fork2, powerLevels("PC", charlie, map[id.UserID]int{alice: 100, bob: 50, charlie: 0}))
			got := r.resolve(base, fork2)
			r.want(got, plKey, "PC")
		}},
		{"topic basic", func(t *testing.T) {
			r, base := baseRoom(t)
			base = r.send(base, topic("T1", alice, "one"))
			base = r.send(base, powerLevels("PA1", alice, map[id.UserID]int{alice: 100, bob: 50}))
			// Fork 1: alice sets T2, then demotes bob (PA2). Fork 2: bob
			// edits the power levels (PB). PA2 goes first (alice), PB then
			// fails. Topics by mainline of PA2: T1 (cites the power levels
			// before PA1) before T2 (cites PA1): T2 wins.
			fork1 := r.send(base, topic("T2", alice, "two"))
			fork1 = r.send(fork1, powerLevels("PA2", alice, map[id.UserID]int{alice: 100, bob: 0}))
			fork2 := r.send(base, powerLevels("PB", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 10}))
			got := r.resolve(fork1, fork2)
			r.want(got, plKey, "PA2")
			r.want(got, topicKey, "T2")
		}},
		{"topic setting", func(t *testing.T) {
			r, base := baseRoom(t)
			base = r.send(base, topic("T1", alice, "one"))
			base = r.send(base, powerLevels("PA1", alice, map[id.UserID]int{alice: 100, bob: 50}))
			fork1 := r.send(base, topic("T2", alice, "two"))
			fork1 = r.send(fork1, powerLevels("PA2", alice, map[id.UserID]int{alice: 100, bob: 0}))
			fork2 := r.send(base, powerLevels("PB", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 10}))
			fork2 = r.send(fork2, topic("T3", bob, "three"))
			// The forks meet; alice then sets T4 on the merged state.
			merged := r.resolve(fork1, fork2)
			r.want(merged, topicKey, "T2") // T3 fails: bob was demoted
			after := r.send(merged, topic("T4", alice, "four"))
			// A server still on fork 2 resolves against the new state.
			got := r.resolve(after, fork2)
			r.want(got, plKey, "PA2")
			r.want(got, topicKey, "T4")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
