package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

// BenchmarkFanoutSyncs measures the server's side of a fan-out (issue #9):
// after one message into a room of N members, every member's incremental
// /sync (lazy-loaded members, a filter stored by id as Element does) from
// the same position, eight at a time — one op is the time until the last
// of the N syncs has answered. The send is not timed. Its figures are
// the server's cost without a load tool's clients competing for the CPU.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench FanoutSyncs -benchtime 20x ./clientapi
func BenchmarkFanoutSyncs(b *testing.B) {
	const n = 200
	s := apptest.Start(b)
	senderTok, room, toks, filters := fanoutRoom(b, s, n)
	i := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		since := mustSync(b, s, toks[0], "", "filter", filters[0]).NextBatch
		id := sendText(b, s, senderTok, room, fmt.Sprintf("b%d", i), "hello")
		i++
		b.StartTimer()
		cpu0 := processCPU()
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for m := range work {
					body := mustSync(b, s, toks[m], since, "filter", filters[m])
					if evs := body.Rooms.Join[room].Timeline.Events; len(evs) != 1 || evs[0].EventID != id {
						b.Errorf("member %d: timeline %+v, want %s", m, evs, id)
					}
				}
			})
		}
		for m := range n {
			work <- m
		}
		close(work)
		wg.Wait()
		cpu += processCPU() - cpu0
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/member")
	// The test process's CPU (server and its HTTP clients; PostgreSQL's
	// backends not counted) per member sync: less sensitive than wall
	// time to what else runs on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/n, "cpu-µs/member")
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fanoutRoom is a public room of a sender and n members, each with a
// stored filter (lazy-loaded members, no presence, 20 timeline events) as
// a client like Element keeps: the sender's token, the room, and each
// member's token and filter id.
func fanoutRoom(b *testing.B, s *apptest.Server, n int) (senderTok, room string, toks, filters []string) {
	b.Helper()
	_, senderTok = s.Register(b, "sender", pw)
	room = newRoom(b, s, senderTok, obj{"preset": "public_chat"})
	toks, filters = make([]string, n), make([]string, n)
	for i := range n {
		user, tok := s.Register(b, fmt.Sprintf("m%d", i), pw)
		apptest.MustStatus(b, s.Do(b, http.MethodPost, v3+"/join/"+url.PathEscape(room), tok, obj{}), http.StatusOK)
		res := s.Do(b, http.MethodPost, v3+"/user/"+url.PathEscape(user)+"/filter", tok, obj{
			"presence": obj{"types": []string{}},
			"room":     obj{"timeline": obj{"limit": 20}, "state": obj{"lazy_load_members": true}},
		})
		apptest.MustStatus(b, res, http.StatusOK)
		toks[i], filters[i] = tok, res.String("filter_id")
	}
	return senderTok, room, toks, filters
}
