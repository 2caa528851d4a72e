package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

// benchSizes are the room sizes a benchmark measures at: the environment
// variable env (comma-separated, each at least `least`), else 1,000 and
// 10,000 (PARLEY_BENCH_HISTORY: events of BenchmarkHistory;
// PARLEY_BENCH_MEMBERS: members of BenchmarkLazyInitialSyncMembers).
func benchSizes(b *testing.B, env string, least int) []int {
	spec := os.Getenv(env)
	if spec == "" {
		return []int{1000, 10000}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < least {
			b.Fatalf("%s: %q is not a size of at least %d", env, f, least)
		}
		out = append(out, n)
	}
	return out
}

// elementFilter is a filter like Element's: lazy-loaded members, 20
// timeline events.
const elementFilter = `{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":20}}}`

// BenchmarkHistory measures what reading a room costs as its history
// grows (issue #9: "incremental sync and a /messages page take the same
// time with 1,000 and 1,000,000 events"). Two public rooms, each with its
// own user, are filled with the filler (fill_test.go: real signed events
// through the real persist path): a reference room of 1,000 events, and a
// large room grown to each size in turn. Every iteration measures the same
// read in both rooms, one after the other, so that the load of a shared
// machine weighs on both alike: ms/ref and ms/large are the two rooms'
// averages, and large/ref their ratio (1 when the cost does not grow with
// the history). The reads:
//
//   - incremental-sync: a /sync since the previous one, after one new
//     message (sent outside the timing);
//
//   - initial-sync: the room's initial sync (its members grow with the
//     history: one join every 1,000 events);
//
//   - messages-latest, messages-middle: a /messages page of 20 backwards
//     from the end, and from the middle of the history.
//
//     PARLEY_BENCH_HISTORY=100000,1000000 go run ./storage/pgtest/pgtestrun -- \
//     go test -run '^$' -bench History -benchtime 50x -timeout 2h ./storage
func BenchmarkHistory(b *testing.B) {
	svc, st, key, pool := newFillService(b)
	ctx := context.Background()
	sync := syncer.New(syncer.Config{}, storage.NewFilters(pool), storage.NewSync(st), syncer.NewNotifier(nil), svc, slog.Default())
	var txn int
	newCase := func(name string) *historyRoom {
		user := uniqueUser(b, name)
		room, err := svc.CreateRoom(ctx, user, rooms.CreateRequest{Preset: "public_chat"})
		if err != nil {
			b.Fatal(err)
		}
		return &historyRoom{user: user, room: room, f: newFiller(ctx, b, st, key, room, user)}
	}
	ref, large := newCase("histref"), newCase("histlarge")
	grow := func(hr *historyRoom, n int) {
		if n <= hr.filled {
			return
		}
		explainSlow(ctx, b, pool, false)
		start := time.Now()
		if err := hr.f.fill(ctx, n-hr.filled, 2000); err != nil {
			b.Fatal(err)
		}
		b.Logf("filled %d → %d events in %s (%.0f events/s)", hr.filled, n, time.Since(start).Round(time.Millisecond),
			float64(n-hr.filled)/time.Since(start).Seconds())
		hr.filled = n
		// What autovacuum does after a large insert: without it the
		// planner reads the room as it was before the fill (a plan of a
		// 20,000-event room sorted every event for a page).
		if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
			b.Fatal(err)
		}
		explainSlow(ctx, b, pool, true)
	}
	grow(ref, 1000)
	doSync := func(b *testing.B, hr *historyRoom, since string) *syncer.Response {
		resp, err := sync.Sync(ctx, syncer.Request{User: hr.user, Device: "BENCH", Since: since, Filter: elementFilter})
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	filter := &rooms.EventFilter{LazyLoadMembers: true}
	for _, n := range benchSizes(b, "PARLEY_BENCH_HISTORY", 100) {
		grow(large, n)
		b.Run(fmt.Sprintf("events=%d/incremental-sync", n), func(b *testing.B) {
			since := map[*historyRoom]string{ref: doSync(b, ref, "").NextBatch, large: doSync(b, large, "").NextBatch}
			alternate(b, ref, large, func(b *testing.B, hr *historyRoom) time.Duration {
				txn++
				v := rooms.Viewer{User: hr.user, Device: "BENCH"}
				if _, err := svc.Send(ctx, v, hr.room, "m.room.message", fmt.Sprint("h", txn), json.RawMessage(`{"msgtype":"m.text","body":"new"}`)); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				resp := doSync(b, hr, since[hr])
				took := time.Since(start)
				if jr := resp.Rooms.Join[hr.room]; jr == nil || len(jr.Timeline.Events) != 1 {
					b.Fatalf("incremental sync did not bring the one new message")
				}
				since[hr] = resp.NextBatch
				return took
			})
		})
		b.Run(fmt.Sprintf("events=%d/initial-sync", n), func(b *testing.B) {
			alternate(b, ref, large, func(b *testing.B, hr *historyRoom) time.Duration {
				start := time.Now()
				resp := doSync(b, hr, "")
				took := time.Since(start)
				if jr := resp.Rooms.Join[hr.room]; jr == nil || len(jr.Timeline.Events) != 20 {
					b.Fatalf("initial sync lacks the room's 20 latest events")
				}
				return took
			})
		})
		for _, page := range []struct {
			name   string
			middle bool
		}{{"messages-latest", false}, {"messages-middle", true}} {
			b.Run(fmt.Sprintf("events=%d/%s", n, page.name), func(b *testing.B) {
				alternate(b, ref, large, func(b *testing.B, hr *historyRoom) time.Duration {
					var from string
					if page.middle {
						from = rooms.PositionToken(int64(hr.filled / 2))
					}
					start := time.Now()
					p, err := svc.Messages(ctx, hr.user, hr.room, rooms.MessagesRequest{From: from, Dir: rooms.Backward, Limit: 20, Filter: filter})
					took := time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
					if len(p.Chunk) != 20 {
						b.Fatalf("a page of %d events, want 20", len(p.Chunk))
					}
					return took
				})
			})
		}
	}
}

// historyRoom is one room of BenchmarkHistory.
type historyRoom struct {
	user   id.UserID
	room   id.RoomID
	f      *filler
	filled int
}

// alternate runs read b.N times in each room, the reference room first
// each time, and reports each room's average time and their ratio. The
// timer runs only inside read's own measurement (what it returns).
func alternate(b *testing.B, ref, large *historyRoom, read func(*testing.B, *historyRoom) time.Duration) {
	b.StopTimer()
	var tRef, tLarge time.Duration
	for range b.N {
		tRef += read(b, ref)
		tLarge += read(b, large)
	}
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(tRef.Seconds()*1000/n, "ms/ref")
	b.ReportMetric(tLarge.Seconds()*1000/n, "ms/large")
	b.ReportMetric(tLarge.Seconds()/tRef.Seconds(), "large/ref")
}

// explainSlow, with PARLEY_BENCH_EXPLAIN=MS, has PostgreSQL's auto_explain
// log the plan (EXPLAIN ANALYZE) of every statement of this database
// slower than MS milliseconds into the server's log, from the next
// connection on (the pool is reset): a query whose plan scans the room
// shows there with its database's name. on=false turns it off (while
// filling).
func explainSlow(ctx context.Context, b *testing.B, pool *pgxpool.Pool, on bool) {
	ms := os.Getenv("PARLEY_BENCH_EXPLAIN")
	if ms == "" {
		return
	}
	if _, err := strconv.Atoi(ms); err != nil {
		b.Fatalf("PARLEY_BENCH_EXPLAIN=%q: not a number of milliseconds", ms)
	}
	var db string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		b.Fatal(err)
	}
	if !on {
		if _, err := pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" RESET ALL"); err != nil {
			b.Fatal(err)
		}
		pool.Reset()
		return
	}
	for _, set := range []string{
		"session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = " + ms,
		"auto_explain.log_analyze = on", "auto_explain.log_buffers = on",
	} {
		if _, err := pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET "+set); err != nil {
			b.Fatal(err)
		}
	}
	pool.Reset()
	b.Logf("auto_explain: plans of statements over %s ms of database %s go to the server log", ms, db)
}
