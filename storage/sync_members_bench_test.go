package storage_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

// BenchmarkLazyInitialSyncMembers measures a lazy-loading initial sync
// (Element's filter: 20 events) of one room as its membership grows (issue
// #9: the initial sync of the 1,000,000-event room, with its 1,000
// members, cost 4.8 times that of a 1,000-event room, because the state
// section read every member event before lazy loading dropped all but the
// timeline's senders'). A reference room of 10 members and a large room of
// each size in turn, both ending with 20 messages of a few members, are
// synced one after the other in every iteration (alternate), so that the
// load of a shared machine weighs on both alike; large/ref is 1 when the
// cost does not grow with the members.
//
//	PARLEY_BENCH_MEMBERS=1000,10000 go test -run '^$' -bench LazyInitialSyncMembers -benchtime 20x ./storage
func BenchmarkLazyInitialSyncMembers(b *testing.B) {
	svc, st, key, pool := newFillService(b)
	ctx := context.Background()
	sync := syncer.New(syncer.Config{}, storage.NewFilters(pool), storage.NewSync(st), syncer.NewNotifier(nil), svc, slog.Default())
	newRoom := func(name string) *historyRoom {
		user := uniqueUser(b, name)
		room, err := svc.CreateRoom(ctx, user, rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			b.Fatal(err)
		}
		f := newFiller(ctx, b, st, key, room, user)
		f.joinEvery = 1
		return &historyRoom{user: user, room: room, f: f}
	}
	// grow has members join the room until it has n (the creator is
	// one), then ends it with 20 messages of its first few members.
	grow := func(hr *historyRoom, n int) {
		start := time.Now()
		hr.f.joinEvery = 1
		if err := hr.f.fill(ctx, n-len(hr.f.members), 2000); err != nil {
			b.Fatal(err)
		}
		hr.f.joinEvery, hr.f.members = 1<<62, hr.f.members[:4]
		if err := hr.f.fill(ctx, 20, 20); err != nil {
			b.Fatal(err)
		}
		hr.filled = n
		if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
		b.Logf("room of %d members in %s", n, time.Since(start).Round(time.Millisecond))
	}
	ref := newRoom("memref")
	grow(ref, 10)
	for _, n := range benchSizes(b, "PARLEY_BENCH_MEMBERS", 10) {
		large := newRoom(fmt.Sprint("members", n))
		grow(large, n)
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			alternate(b, ref, large, func(b *testing.B, hr *historyRoom) time.Duration {
				start := time.Now()
				resp, err := sync.Sync(ctx, syncer.Request{User: hr.user, Device: "BENCH", Filter: elementFilter})
				took := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				jr := resp.Rooms.Join[hr.room]
				if jr == nil || len(jr.Timeline.Events) != 20 || len(jr.State.Events) > 12 || *jr.Summary.Joined != hr.filled {
					b.Fatalf("initial sync: %+v, want 20 events, a few state events and %d joined", jr, hr.filled)
				}
				return took
			})
		})
	}
}
