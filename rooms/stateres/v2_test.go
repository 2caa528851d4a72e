package stateres

import (
	"testing"

	"github.com/parleyhq/parley/id"
)

// baseRoom is a version 10 room where alice (100) created the room, gave bob
// 50, and bob, charlie and zara joined: the state every fork below starts
// from.
func baseRoom(t *testing.T) (*testRoom, StateMap) {
	t.Helper()
	r := newTestRoom(t, "10")
	s := r.create()
	s = r.send(s, member(bob, "join", bob, "IMB"))
	s = r.send(s, member(charlie, "join", charlie, "IMC"))
	s = r.send(s, member(zara, "join", zara, "IMZ"))
	s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{alice: 100, bob: 50}))
	return r, s
}

func TestBanRacingMessage(t *testing.T) {
	r, base := baseRoom(t)
	// Fork 1: alice bans bob. Fork 2: bob talks, then sets the topic. A
	// message changes no state, so its fork's state is the state before it.
	fork1 := r.send(base, member(bob, "ban", alice, "BAN"))
	fork2 := r.send(base, ev{name: "MSG", typ: "m.room.message", sender: bob, content: `{"body":"hi"}`})
	fork2 = r.send(fork2, topic("TBOB", bob, "bob's topic"))

	got := r.resolve(fork1, fork2)
	r.want(got, memberKey(bob), "BAN")
	// bob's topic is checked after the ban (power events first) and fails.
	r.want(got, topicKey, "")
	r.want(got, plKey, "PA")
}

func TestPowerLevelChangeRacingKick(t *testing.T) {
	r, base := baseRoom(t)
	// bob (50) kicks charlie early; alice demotes bob later. Ordering by
	// time would let the kick through; the power ordering takes alice's
	// demotion first, after which bob may no longer kick.
	fork1 := r.send(base, ev{name: "KICK", typ: typeMember, stateKey: sk(string(charlie)), sender: bob,
		content: `{"membership":"leave"}`, ts: 1000})
	fork2 := r.send(base, powerLevels("PB", alice, map[id.UserID]int{alice: 100}))
	r.events[r.eventID("PB")].ts = 2000

	got := r.resolve(fork1, fork2)
	r.want(got, plKey, "PB")
	r.want(got, memberKey(charlie), "IMC")
}

func TestJoinRacingJoinRuleChange(t *testing.T) {
	r, base := baseRoom(t)
	fork1 := r.send(base, joinRules("JRI", alice, "invite"))
	fork2 := r.send(base, member(evelyn, "join", evelyn, "JOINE"))

	got := r.resolve(fork1, fork2)
	r.want(got, jrKey, "JRI")
	// evelyn's join is checked against the invite-only rules and fails.
	r.want(got, memberKey(evelyn), "")
}

func TestTopicRaceDecidedByMainline(t *testing.T) {
	r, base := baseRoom(t)
	// Fork 1 changes the power levels, then sets a topic citing them; fork 2
	// sets a later topic citing the older power levels. The topic whose
	// power levels are newer on the mainline is applied last, whatever the
	// timestamps say.
	fork1 := r.send(base, powerLevels("PB", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 10}))
	fork1 = r.send(fork1, ev{name: "TNEW", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{"topic":"a"}`, ts: 100})
	fork2 := r.send(base, ev{name: "TOLD", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{"topic":"b"}`, ts: 900})

	got := r.resolve(fork1, fork2)
	r.want(got, plKey, "PB")
	r.want(got, topicKey, "TNEW")
}

// TestPowerOrderingTieBreaks isolates each tie-break of the reverse
// topological power ordering with two racing join rules changes that both
// pass auth: the one ordered last is the one the room keeps.
func TestPowerOrderingTieBreaks(t *testing.T) {
	type side struct {
		name   string
		sender id.UserID
		ts     int64
	}
	cases := []struct {
		name string
		a, b side
		want string
	}{
		// alice (100) before bob (50) though bob is earlier and smaller:
		// bob's is applied last.
		{"greater power level first", side{"JRZ", alice, 20}, side{"JRA", bob, 10}, "JRA"},
		{"greater power level first, swapped", side{"JRA", bob, 10}, side{"JRZ", alice, 20}, "JRA"},
		// bob and charlie both 50: earlier timestamp first, whatever the id.
		{"earlier timestamp first", side{"JRA", bob, 20}, side{"JRZ", charlie, 10}, "JRA"},
		{"earlier timestamp first, swapped", side{"JRZ", bob, 10}, side{"JRA", charlie, 20}, "JRA"},
		// Same level and timestamp: smaller event id first.
		{"smaller event id first", side{"JRA", bob, 10}, side{"JRB", charlie, 10}, "JRB"},
		{"smaller event id first, swapped", side{"JRB", bob, 10}, side{"JRA", charlie, 10}, "JRB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRoom(t, "10")
			s := r.create()
			s = r.send(s, member(bob, "join", bob, "IMB"))
			s = r.send(s, member(charlie, "join", charlie, "IMC"))
			s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 50}))
			fork1 := r.send(s, ev{name: tc.a.name, typ: typeJoinRules, stateKey: sk(""), sender: tc.a.sender, content: `{"join_rule":"invite"}`, ts: tc.a.ts})
			fork2 := r.send(s, ev{name: tc.b.name, typ: typeJoinRules, stateKey: sk(""), sender: tc.b.sender, content: `{"join_rule":"knock"}`, ts: tc.b.ts})
			r.want(r.resolve(fork1, fork2), jrKey, tc.want)
		})
	}
}

// TestMainlineOrderingTieBreaks: topics at the same mainline position are
// ordered by timestamp, then by event id; the last one wins.
func TestMainlineOrderingTieBreaks(t *testing.T) {
	cases := []struct {
		name         string
		aName, bName string
		aTS, bTS     int64
		want         string
	}{
		{"later timestamp applied last", "TA", "TZ", 50, 10, "TA"},
		{"later timestamp applied last, swapped", "TZ", "TA", 10, 50, "TA"},
		{"same timestamp: greater id applied last", "TA", "TB", 10, 10, "TB"},
		{"same timestamp: greater id applied last, swapped", "TB", "TA", 10, 10, "TB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, base := baseRoom(t)
			fork1 := r.send(base, ev{name: tc.aName, typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{"topic":"a"}`, ts: tc.aTS})
			fork2 := r.send(base, ev{name: tc.bName, typ: "m.room.topic", stateKey: sk(""), sender: bob, content: `{"topic":"b"}`, ts: tc.bTS})
			r.want(r.resolve(fork1, fork2), topicKey, tc.want)
		})
	}
}

func TestRejectedAuthEventIsNotUsed(t *testing.T) {
	for _, rejected := range []bool{false, true} {
		name := "auth event accepted"
		if rejected {
			name = "auth event rejected"
		}
		t.Run(name, func(t *testing.T) {
			r := newTestRoom(t, "12")
			s := r.create()
			s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{bob: 50}))
			// bob's join is in both forks and cited from both (by his room
			// name), so it is in no auth difference and never re-checked.
			s = r.send(s, member(bob, "join", bob, "JOINB"))
			s = r.send(s, ev{name: "NAMEB", typ: "m.room.name", stateKey: sk(""), sender: bob, content: `{"name":"b"}`})
			r.events[r.eventID("JOINB")].rejected = rejected
			fork1 := r.send(s, topic("TBOB", bob, "bob"))
			// alice's topic in fork 2 is earlier, so bob's is checked last.
			fork2 := r.send(s, ev{name: "TALICE", typ: "m.room.topic", stateKey: sk(""), sender: alice, content: `{"topic":"a"}`, ts: 1})
			got := r.resolve(fork1, fork2)
			if rejected {
				// v2.1 starts the checks from empty state, so bob's
				// membership can only come from his topic's auth events: his
				// rejected join is not used, his topic fails, alice's stands.
				r.want(got, topicKey, "TALICE")
			} else {
				r.want(got, topicKey, "TBOB")
			}
		})
	}
}
