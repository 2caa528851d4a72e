package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// BenchmarkServeStateLargeRoom measures what a resident server does for
// GET /state and for a send_join answer in a room of 2,000 members: the
// state before the latest event and the auth chain of that state.
func BenchmarkServeStateLargeRoom(b *testing.B) {
	const members = 2000
	ctx := context.Background()
	f := newServeFixture(b, rooms.CreateRequest{})
	for i := range members {
		f.join(b, id.NewUserID(fmt.Sprintf("m%d_%d", i, testNumber(b)), remoteServer))
	}
	last := f.say(b, "last")
	b.ResetTimer()
	for b.Loop() {
		st, chain, err := f.svc.ServeState(ctx, remoteServer, f.room, last)
		if err != nil {
			b.Fatal(err)
		}
		if len(st) < members {
			b.Fatalf("%d state events", len(st))
		}
		_ = chain
	}
}
