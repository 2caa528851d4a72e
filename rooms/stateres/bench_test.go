package stateres

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// bigRoom builds a room with members joined members (each join citing the
// create event, the power levels, the join rules and nothing else, as a
// first join does) and two forks that each make a few conflicting power
// level, membership, join rule and topic changes.
func bigRoom(tb testing.TB, version roomversion.ID, members int) (*testRoom, StateMap, StateMap) {
	tb.Helper()
	r := newTestRoom(tb, version)
	r.clockDepth = true
	s := r.create()
	s = r.send(s, powerLevels("PMOD", alice, map[id.UserID]int{alice: 100, "@u1:x.example": 50, "@u2:x.example": 50}))
	if r.rv.CreateEventDefinesRoomID {
		s = r.send(s, powerLevels("PMOD2", alice, map[id.UserID]int{"@u1:x.example": 50, "@u2:x.example": 50}))
	}
	for i := range members {
		u := id.UserID(fmt.Sprintf("@u%d:x.example", i))
		e := r.add(s, member(u, "join", u, fmt.Sprintf("J%d", i)))
		s[memberKey(u)] = e.id // in place: cloning 10,000 entries per join is the test's cost, not the resolver's
	}
	fork1 := cloneMap(s)
	fork1 = r.send(fork1, topic("F1T", alice, "fork one"))
	fork1 = r.send(fork1, member("@u10:x.example", "ban", "@u1:x.example", "F1BAN"))
	fork1 = r.send(fork1, member("@u11:x.example", "leave", "@u11:x.example", "F1LEAVE"))
	fork1 = r.send(fork1, powerLevels("F1P", alice, map[id.UserID]int{alice: 100, "@u1:x.example": 50}))
	fork1 = r.send(fork1, topic("F1T2", "@u1:x.example", "fork one again"))

	fork2 := cloneMap(s)
	fork2 = r.send(fork2, powerLevels("F2P", "@u2:x.example", map[id.UserID]int{alice: 100, "@u1:x.example": 0, "@u2:x.example": 50}))
	fork2 = r.send(fork2, member("@u1:x.example", "leave", "@u2:x.example", "F2KICK"))
	fork2 = r.send(fork2, joinRules("F2JR", alice, "invite"))
	fork2 = r.send(fork2, topic("F2T", "@u2:x.example", "fork two"))
	fork2 = r.send(fork2, member("@u10:x.example", "leave", "@u10:x.example", "F2LEAVE"))
	return r, fork1, fork2
}

func TestBigRoomResolves(t *testing.T) {
	r, fork1, fork2 := bigRoom(t, "10", 200)
	got := r.resolve(fork1, fork2)
	if len(got) < 200 {
		t.Fatalf("resolved state has %d entries, want every member", len(got))
	}
	// Power events and, with them, the parts of their auth chains in the
	// full conflicted set (u1's join, cited by u1's ban), by power: the old
	// join rules and F1P (alice, 100; F1P drops u2 to 0), u1's join and ban
	// of u10 (50, earlier) before u2's F2P (50, now failing), alice's F2JR,
	// and u2's kick of u1 (failing). Then, by mainline of F1P: u11's leave
	// passes, u10's leave fails (banned), u2's topic fails and u1's topic
	// (citing F1P, mainline position 0) is applied last.
	r.want(got, plKey, "F1P")
	r.want(got, jrKey, "F2JR")
	r.want(got, memberKey("@u10:x.example"), "F1BAN")
	r.want(got, memberKey("@u11:x.example"), "F1LEAVE")
	r.want(got, memberKey("@u1:x.example"), "J1")
	r.want(got, memberKey("@u12:x.example"), "J12")
	r.want(got, topicKey, "F1T2")
}

// BenchmarkResolveTwoForks10kMembers: go test ./rooms/stateres -run '^$'
// -bench ResolveTwoForks10kMembers -benchmem
func BenchmarkResolveTwoForks10kMembers(b *testing.B) {
	for _, version := range []roomversion.ID{"10", "12"} {
		b.Run("room version "+string(version), func(b *testing.B) {
			r, fork1, fork2 := bigRoom(b, version, 10_000)
			sets := []StateMap{fork1, fork2}
			src := EventSource(r)
			ctx := context.Background()
			for b.Loop() {
				got, err := Resolve(ctx, r.rv, sets, src)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) < 10_000 {
					b.Fatalf("resolved %d entries", len(got))
				}
			}
		})
	}
}

var _ auth.State = fixedState{}
