package stateres

import (
	"bytes"
	"crypto/sha1"
	"testing"

	"github.com/parleyhq/parley/id"
)

func v1Room(t *testing.T) (*testRoom, StateMap) {
	t.Helper()
	r := newTestRoom(t, "1")
	s := r.create()
	s = r.send(s, member(bob, "join", bob, "IMB"))
	s = r.send(s, member(charlie, "join", charlie, "IMC"))
	s = r.send(s, powerLevels("PA", alice, map[id.UserID]int{alice: 100, bob: 50}))
	return r, s
}

// lowerSHA1 returns whichever name's event id has the smaller sha1.
func lowerSHA1(r *testRoom, a, b string) string {
	ha, hb := sha1.Sum([]byte(r.eventID(a))), sha1.Sum([]byte(r.eventID(b)))
	if bytes.Compare(ha[:], hb[:]) < 0 {
		return a
	}
	return b
}

func TestV1(t *testing.T) {
	t.Run("power levels: shallow first, deeper ones applied while allowed", func(t *testing.T) {
		r, base := v1Room(t)
		fork1 := r.send(base, powerLevels("P1", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 10}))
		fork2 := r.send(base, topic("T", alice, "deeper"))
		fork2 = r.send(fork2, powerLevels("P2", alice, map[id.UserID]int{alice: 100, bob: 50, charlie: 20}))
		got := r.resolve(fork1, fork2)
		r.want(got, plKey, "P2")
	})
	t.Run("power levels: a deeper change the shallower one forbids stops", func(t *testing.T) {
		r, base := v1Room(t)
		// alice demotes bob (shallow); bob's deeper change is then not
		// allowed, and the list stops there.
		fork1 := r.send(base, powerLevels("P1", alice, map[id.UserID]int{alice: 100}))
		fork2 := r.send(base, topic("T", bob, "first"))
		fork2 = r.send(fork2, powerLevels("P2", bob, map[id.UserID]int{alice: 100, bob: 50, charlie: 50}))
		got := r.resolve(fork1, fork2)
		r.want(got, plKey, "P1")
	})
	t.Run("other conflicts: deepest allowed event", func(t *testing.T) {
		r, base := v1Room(t)
		fork1 := r.send(base, topic("T1", alice, "one"))
		fork2 := r.send(base, ev{name: "N", typ: "m.room.name", stateKey: sk(""), sender: alice, content: `{"name":"n"}`})
		fork2 = r.send(fork2, topic("T2", alice, "two"))
		r.want(r.resolve(fork1, fork2), topicKey, "T2")
	})
	t.Run("other conflicts: the deepest is skipped when not allowed", func(t *testing.T) {
		r, base := v1Room(t)
		fork1 := r.send(base, topic("T1", alice, "one"))
		fork2 := r.send(base, ev{name: "N", typ: "m.room.name", stateKey: sk(""), sender: alice, content: `{"name":"n"}`})
		// evelyn is not in the room: her deeper topic fails in R.
		fork2 = r.send(fork2, topic("T2", evelyn, "two"))
		r.want(r.resolve(fork1, fork2), topicKey, "T1")
	})
	t.Run("other conflicts at equal depth: lowest sha1(event_id)", func(t *testing.T) {
		r, base := v1Room(t)
		fork1 := r.send(base, topic("TA", alice, "a"))
		fork2 := r.send(base, topic("TB", alice, "b"))
		r.want(r.resolve(fork1, fork2), topicKey, lowerSHA1(r, "TA", "TB"))
	})
	t.Run("a key only one state has is not a conflict", func(t *testing.T) {
		r, base := v1Room(t)
		fork1 := r.send(base, topic("T1", alice, "one"))
		got := r.resolve(fork1, base)
		r.want(got, topicKey, "T1")
		r.want(got, plKey, "PA")
	})
}
