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

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

// historySizes are the room sizes BenchmarkHistory measures at:
// PARLEY_BENCH_HISTORY (comma-separated), else 1,000 and 10,000.
func historySizes(b *testing.B) []int {
	spec := os.Getenv("PARLEY_BENCH_HISTORY")
	if spec == "" {
		return []int{1000, 10000}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			b.Fatalf("PARLEY_BENCH_HISTORY: %q is not a size of at least 100", f)
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
// time with 1,000 and 1,000,000 events"). One public room is filled, with
// the filler (fill_test.go: real signed events through the real persist
// path), to each size in turn; at each size:
//
//   - incremental-sync: a /sync since the previous one, after one new
//     message (sent outside the timing);
//
//   - messages-latest, messages-middle: a /messages page of 20 backwards
//     from the end, and from the middle of the history;
//
//   - initial-sync: the room's initial sync (its members grow with the
//     history: one join every 1,000 events).
//
//     PARLEY_BENCH_HISTORY=1000,100000,1000000 go run ./storage/pgtest/pgtestrun -- \
//     go test -run '^$' -bench History -benchtime 50x -timeout 2h ./storage
func BenchmarkHistory(b *testing.B) {
	svc, st, key, pool := newFillService(b)
	ctx := context.Background()
	alice := uniqueUser(b, "hist")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		b.Fatal(err)
	}
	notifier := syncer.NewNotifier(nil)
	sync := syncer.New(syncer.Config{}, storage.NewFilters(pool), storage.NewSync(st), notifier, svc, slog.Default())
	f := newFiller(ctx, b, st, key, room, alice)
	filled := 0
	var txn int
	for _, n := range historySizes(b) {
		if n > filled {
			explainSlow(ctx, b, pool, false)
			start := time.Now()
			if err := f.fill(ctx, n-filled, 2000); err != nil {
				b.Fatal(err)
			}
			b.Logf("filled %d → %d events in %s (%.0f events/s)", filled, n, time.Since(start).Round(time.Millisecond),
				float64(n-filled)/time.Since(start).Seconds())
			filled = n
			// What autovacuum does after a large insert: without it the
			// planner reads the room as it was before the fill (a plan
			// of the 20,000-event room sorted every event for a page).
			if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
				b.Fatal(err)
			}
			explainSlow(ctx, b, pool, true)
		}
		v := rooms.Viewer{User: alice, Device: "BENCH"}
		send := func(b *testing.B) {
			txn++
			if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint("h", txn), json.RawMessage(`{"msgtype":"m.text","body":"new"}`)); err != nil {
				b.Fatal(err)
			}
		}
		doSync := func(b *testing.B, since string) *syncer.Response {
			resp, err := sync.Sync(ctx, syncer.Request{User: alice, Device: "BENCH", Since: since, Filter: elementFilter})
			if err != nil {
				b.Fatal(err)
			}
			return resp
		}
		b.Run(fmt.Sprintf("events=%d/incremental-sync", n), func(b *testing.B) {
			since := doSync(b, "").NextBatch
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				send(b)
				b.StartTimer()
				resp := doSync(b, since)
				if jr := resp.Rooms.Join[room]; jr == nil || len(jr.Timeline.Events) != 1 {
					b.Fatalf("incremental sync did not bring the one new message")
				}
				since = resp.NextBatch
			}
		})
		b.Run(fmt.Sprintf("events=%d/initial-sync", n), func(b *testing.B) {
			for range b.N {
				if jr := doSync(b, "").Rooms.Join[room]; jr == nil || len(jr.Timeline.Events) != 20 {
					b.Fatalf("initial sync lacks the room's 20 latest events")
				}
			}
		})
		filter := &rooms.EventFilter{LazyLoadMembers: true}
		for _, page := range []struct {
			name string
			from string
		}{
			{"messages-latest", ""},
			{"messages-middle", rooms.PositionToken(int64(n / 2))},
		} {
			b.Run(fmt.Sprintf("events=%d/%s", n, page.name), func(b *testing.B) {
				for range b.N {
					p, err := svc.Messages(ctx, alice, room, rooms.MessagesRequest{From: page.from, Dir: rooms.Backward, Limit: 20, Filter: filter})
					if err != nil {
						b.Fatal(err)
					}
					if len(p.Chunk) != 20 {
						b.Fatalf("a page of %d events, want 20", len(p.Chunk))
					}
				}
			})
		}
	}
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
