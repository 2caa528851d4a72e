package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// throughputRow is one room mode of the throughput scenario.
type throughputRow struct {
	Rooms       string           `json:"rooms"` // separate | shared
	Senders     int              `json:"senders"`
	Sent        int64            `json:"sent"`  // sends attempted
	Acked       int64            `json:"acked"` // sends the server acknowledged (200 with an event id)
	Errors      map[string]int64 `json:"errors"`
	RateLimited int64            `json:"rate_limited"` // 429 answers retried
	Seconds     float64          `json:"seconds"`
	PerSecond   float64          `json:"msgs_per_s"`
	Send        dist             `json:"send"`
	// Stored is the number of the tool's messages /messages returns
	// afterwards: with -verify, a check that every acknowledged send is
	// there (and nothing else).
	Stored *int64 `json:"stored,omitempty"`
}

type throughputResult struct {
	Scenario string          `json:"scenario"`
	Duration float64         `json:"duration_s"`
	Results  []throughputRow `json:"results"`
}

// throughput runs C senders for D seconds per room mode, each sending as
// fast as its sends are acknowledged; a send counts once acknowledged,
// which Parley does only after its commit.
func (b *bench) throughput(ctx context.Context) (any, error) {
	res := throughputResult{Scenario: "throughput", Duration: b.cfg.duration.Seconds()}
	senders, err := b.reg.registerMany(ctx, "tput", b.cfg.senders)
	if err != nil {
		return nil, err
	}
	for _, mode := range b.cfg.roomModes {
		rooms := make([]string, len(senders))
		if mode == "shared" {
			room, err := b.c.createRoom(ctx, senders[0], "parley-bench shared")
			if err != nil {
				return nil, err
			}
			for i, u := range senders {
				if i > 0 {
					if err := b.c.join(ctx, u, room); err != nil {
						return nil, err
					}
				}
				rooms[i] = room
			}
		} else {
			for i, u := range senders {
				if rooms[i], err = b.c.createRoom(ctx, u, "parley-bench separate"); err != nil {
					return nil, err
				}
			}
		}
		b.o.progress("throughput: %d senders, %s rooms, %s", len(senders), mode, b.cfg.duration)
		row, err := b.sendFlat(ctx, senders, rooms, b.cfg.duration)
		if err != nil {
			return nil, err
		}
		row.Rooms = mode
		if b.cfg.verify {
			n, err := b.countStored(ctx, senders, rooms)
			if err != nil {
				return nil, err
			}
			row.Stored = &n
		}
		res.Results = append(res.Results, row)
	}
	var rows [][]string
	for _, r := range res.Results {
		rows = append(rows, append(append([]string{r.Rooms, strconv.Itoa(r.Senders), strconv.FormatInt(r.Acked, 10),
			fmt.Sprintf("%.0f", r.PerSecond)}, r.Send.cells()...), errorsCell(r.Errors)))
	}
	b.o.table(fmt.Sprintf("throughput: %d senders for %s per mode (send latency in ms)", b.cfg.senders, b.cfg.duration),
		[]string{"rooms", "senders", "acked", "msgs/s", "send p50", "p90", "p99", "max", "errors"}, rows)
	return res, nil
}

func errorsCell(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// sendFlat has senders[i] send into rooms[i] back to back for d (after
// one untimed warm-up send each, which opens the connections); no send
// starts after d, and the ones in flight are waited for.
func (b *bench) sendFlat(ctx context.Context, senders []*user, rooms []string, d time.Duration) (throughputRow, error) {
	row := throughputRow{Senders: len(senders), Errors: map[string]int64{}}
	limitedBefore := b.c.rateLimited.Load()
	var wg sync.WaitGroup
	for i, u := range senders {
		wg.Go(func() {
			if _, err := b.c.send(ctx, u, rooms[i], -1, now()); err != nil {
				b.o.progress("warm-up send failed: %v", err)
			}
		})
	}
	wg.Wait()
	var mu sync.Mutex
	var lat []int64
	start := time.Now()
	deadline := start.Add(d)
	for i, u := range senders {
		wg.Go(func() {
			var mine []int64
			errs := map[string]int64{}
			var sent int64
			for seq := int64(0); time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				t0 := now()
				sent++
				if _, err := b.c.send(ctx, u, rooms[i], seq, t0); err != nil {
					errs[errcodeOf(err)]++
					continue
				}
				mine = append(mine, now()-t0)
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			row.Sent += sent
			for k, v := range errs {
				row.Errors[k] += v
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	row.Acked = int64(len(lat))
	row.Seconds = round3(elapsed.Seconds())
	row.PerSecond = round3(float64(row.Acked) / elapsed.Seconds())
	row.Send = summarize(lat)
	row.RateLimited = b.c.rateLimited.Load() - limitedBefore
	return row, ctx.Err()
}

// countStored pages each room's history backwards with /messages (as
// the first of senders in it) and counts the tool's timed messages
// (warm-up sends carry seq -1 and are left out).
func (b *bench) countStored(ctx context.Context, senders []*user, rooms []string) (int64, error) {
	var n int64
	for i, room := range rooms {
		if slices.Contains(rooms[:i], room) {
			continue
		}
		u := senders[i]
		from := ""
		for {
			q := url.Values{"dir": {"b"}, "limit": {"1000"}}
			if from != "" {
				q.Set("from", from)
			}
			var page struct {
				Chunk []struct {
					Type    string `json:"type"`
					Content struct {
						Seq *int64 `json:"im.parley.bench.seq"`
					} `json:"content"`
				} `json:"chunk"`
				End string `json:"end"`
			}
			if err := b.c.do(ctx, http.MethodGet, roomPath(room, "/messages?"+q.Encode()), u.Token, nil, &page); err != nil {
				return 0, fmt.Errorf("count stored messages: %w", err)
			}
			for _, ev := range page.Chunk {
				if ev.Type == "m.room.message" && ev.Content.Seq != nil && *ev.Content.Seq >= 0 {
					n++
				}
			}
			if page.End == "" || len(page.Chunk) == 0 {
				break
			}
			from = page.End
		}
	}
	return n, nil
}
