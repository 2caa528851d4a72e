package clientapi_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// BenchmarkFanoutSyncRoundTrips counts the database round trips of a
// fan-out (issue #9): after one message into a room of N members, every
// member's incremental /sync from the same position (lazy-loaded members,
// a stored filter), eight at a time. The server reaches PostgreSQL
// through a proxy that counts the client's Sync and Query messages — each
// is one round trip, whatever the statement. The metric is per member
// sync and includes what the syncs share (the positions, the timeline);
// the send is not counted.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench FanoutSyncRoundTrips -benchtime 5x ./clientapi
func BenchmarkFanoutSyncRoundTrips(b *testing.B) {
	const n = 100
	var trips atomic.Int64
	s := apptest.Start(b, func(c *config.Config) { c.Database.URL = countRoundTrips(b, c.Database.URL, &trips) })
	senderTok, room, toks, filters := fanoutRoom(b, s, n)
	// Every member's sync once, so that what a first sync reads (the
	// stored filter, one-time key counts) is not counted below.
	since := mustSync(b, s, toks[0], "", "filter", filters[0]).NextBatch
	for m := range n {
		mustSync(b, s, toks[m], since, "filter", filters[m])
	}
	var counted int64
	i := 0
	for b.Loop() {
		since := mustSync(b, s, toks[0], "", "filter", filters[0]).NextBatch
		sendText(b, s, senderTok, room, fmt.Sprintf("r%d", i), "hello")
		i++
		before := trips.Load()
		work := make(chan int)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for m := range work {
					mustSync(b, s, toks[m], since, "filter", filters[m])
				}
			})
		}
		for m := range n {
			work <- m
		}
		close(work)
		wg.Wait()
		counted += trips.Load() - before
	}
	b.ReportMetric(float64(counted)/float64(b.N)/n, "roundtrips/member")
}

// countRoundTrips starts a proxy in front of the database of dbURL (a
// postgres:// URL) and returns the URL to reach it through; trips counts
// the Sync and Query messages clients send.
func countRoundTrips(tb testing.TB, dbURL string, trips *atomic.Int64) string {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("database url: %v", err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				server, err := net.Dial("tcp", target)
				if err != nil {
					client.Close()
					return
				}
				go func() {
					_, _ = io.Copy(client, server)
					client.Close()
				}()
				_ = copyCounting(server, client, trips)
				server.Close()
			}()
		}
	}()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// copyCounting copies the frontend's messages to the server, counting
// Sync ('S') and simple Query ('Q') messages. The startup message (and
// an SSL request before it) has no type byte.
func copyCounting(dst io.Writer, src io.Reader, trips *atomic.Int64) error {
	var head [5]byte
	for startup := true; startup; {
		if _, err := io.ReadFull(src, head[:4]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(head[:4])
		body := make([]byte, n-4)
		if _, err := io.ReadFull(src, body); err != nil {
			return err
		}
		// 80877103: SSLRequest; 80877104: GSSENCRequest — a startup
		// message follows either.
		startup = len(body) >= 4 && (binary.BigEndian.Uint32(body) == 80877103 || binary.BigEndian.Uint32(body) == 80877104)
		if _, err := dst.Write(append(head[:4:4], body...)); err != nil {
			return err
		}
	}
	for {
		if _, err := io.ReadFull(src, head[:]); err != nil {
			return err
		}
		if head[0] == 'S' || head[0] == 'Q' {
			trips.Add(1)
		}
		n := binary.BigEndian.Uint32(head[1:])
		if _, err := dst.Write(head[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(dst, src, int64(n-4)); err != nil {
			return err
		}
	}
}
