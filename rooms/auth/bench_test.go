package auth_test

import (
	"fmt"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

// bigRoom is a v10 room with 10,000 joined members and power levels
// listing 50 of them, the shape state resolution meets in large rooms.
func bigRoom(b *testing.B) *authtest.Room {
	b.Helper()
	rv := authtest.Version("10")
	r := authtest.NewStandardRoom(rv, alice, auth.JoinPublic)
	users := map[id.UserID]int{}
	for i := range 10000 {
		u := id.UserID(fmt.Sprintf("@user%d:s%d.test", i, i%100))
		r.Join(u)
		if i < 50 {
			users[u] = 50
		}
	}
	setLevels(r, users, map[string]any{"events": map[string]any{"m.room.name": 50, "m.room.topic": 50}})
	return r
}

func BenchmarkCheckMessage(b *testing.B) {
	r := bigRoom(b)
	state := r.State()
	ev := message(r, "@user77:s77.test")
	rv := r.Version
	b.ReportAllocs()
	for b.Loop() {
		if err := auth.Check(rv, ev, state); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckJoin(b *testing.B) {
	r := bigRoom(b)
	state := r.State()
	ev := r.Build(memberEv("@new:n.test", "@new:n.test", membership(auth.Join)))
	rv := r.Version
	b.ReportAllocs()
	for b.Loop() {
		if err := auth.Check(rv, ev, state); err != nil {
			b.Fatal(err)
		}
	}
}
