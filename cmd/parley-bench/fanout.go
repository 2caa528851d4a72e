package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// fanoutRow is one room size and transport of the fanout scenario.
type fanoutRow struct {
	Members    int    `json:"members"`
	Transport  string `json:"transport"`
	Messages   int    `json:"messages"`   // sends acknowledged
	Expected   int    `json:"expected"`   // messages × members
	Deliveries int    `json:"deliveries"` // messages members received
	Duplicates int    `json:"duplicates"` // a message a member received twice
	Errors     int    `json:"errors"`
	Limited    int64  `json:"limited"`
	// LastMember is, per message, the time from the start of its send
	// until the last member holds it.
	LastMember dist `json:"last_member"`
	// Delivery is over every single delivery.
	Delivery dist `json:"delivery"`
}

type fanoutResult struct {
	Scenario string      `json:"scenario"`
	Results  []fanoutRow `json:"results"`
}

// fanout puts G members in one room, all syncing, and sends messages into
// it one at a time, each after every member holds the previous one.
func (b *bench) fanout(ctx context.Context) (any, error) {
	res := fanoutResult{Scenario: "fanout"}
	largest := 0
	for _, g := range b.cfg.members {
		largest = max(largest, g)
	}
	sender, err := b.reg.registerMany(ctx, "fansend", 1)
	if err != nil {
		return nil, err
	}
	b.o.progress("fanout: registering %d members", largest)
	members, err := b.reg.registerMany(ctx, "fan", largest)
	if err != nil {
		return nil, err
	}
	for _, g := range b.cfg.members {
		room, err := b.c.createRoom(ctx, sender[0], "parley-bench fanout "+strconv.Itoa(g))
		if err != nil {
			return nil, err
		}
		if err := b.parallel(ctx, g, func(i int) error { return b.c.join(ctx, members[i], room) }); err != nil {
			return nil, err
		}
		for _, tr := range b.cfg.transports {
			b.o.progress("fanout: %d members over %s", g, tr)
			row, err := b.fanoutOnce(ctx, sender[0], members[:g], room, tr)
			if err != nil {
				return nil, fmt.Errorf("%d members, %s: %w", g, tr, err)
			}
			res.Results = append(res.Results, row)
		}
	}
	var rows [][]string
	for _, r := range res.Results {
		rows = append(rows, append(append([]string{strconv.Itoa(r.Members), r.Transport, strconv.Itoa(r.Messages),
			fmt.Sprintf("%d/%d", r.Deliveries, r.Expected)}, r.LastMember.cells()...), f3(r.Delivery.P50), f3(r.Delivery.P99)))
	}
	b.o.table("fanout: time until every member holds a message (ms)",
		[]string{"members", "transport", "messages", "delivered", "last p50", "p90", "p99", "max", "each p50", "each p99"}, rows)
	return res, nil
}

// parallel runs f(0..n-1) with the set-up concurrency and returns the
// first error.
func (b *bench) parallel(ctx context.Context, n int, f func(i int) error) error {
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range max(1, min(b.cfg.setupConcurrency, n)) {
		wg.Go(func() {
			for i := range work {
				if err := f(i); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return cmpErr(firstErr, ctx.Err())
}

func (b *bench) fanoutOnce(ctx context.Context, sender *user, members []*user, room, transport string) (fanoutRow, error) {
	g := len(members)
	row := fanoutRow{Members: g, Transport: transport}
	got := make(chan delivery, g*(b.cfg.fanoutMessages+1))
	stats := &connStats{}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	rs := make([]*receiver, g)
	for i, m := range members {
		rs[i] = newReceiver(b.c, m, transport, stats, func(d delivery) {
			d.member = i
			if d.room == room {
				select {
				case got <- d:
				default:
				}
			}
		})
		wg.Go(func() { rs[i].run(rctx) })
	}
	readyCtx, readyCancel := context.WithTimeout(ctx, time.Minute+time.Duration(g)*50*time.Millisecond)
	err := waitReady(readyCtx, rs)
	readyCancel()
	if err != nil {
		return row, err
	}
	var last, each []int64
	for i := range b.cfg.fanoutMessages {
		seq := int64(i)
		start := now()
		if _, err := b.c.send(ctx, sender, room, seq, start); err != nil {
			row.Errors++
			continue
		}
		row.Messages++
		row.Expected += g
		held, worst := 0, int64(0)
		holders := make(map[int]bool, g)
		timeout := time.After(30 * time.Second)
	wait:
		for held < g {
			select {
			case d := <-got:
				if d.seq != seq {
					continue
				}
				if holders[d.member] {
					row.Duplicates++
					continue
				}
				holders[d.member] = true
				held++
				lat := d.atNS - d.sentNS
				each = append(each, lat)
				worst = max(worst, lat)
			case <-timeout:
				break wait
			case <-ctx.Done():
				return row, ctx.Err()
			}
		}
		row.Deliveries += held
		if held == g {
			last = append(last, worst)
		}
	}
	row.Errors += int(stats.errors.Load())
	row.Limited = stats.limited.Load()
	row.LastMember, row.Delivery = summarize(last), summarize(each)
	return row, nil
}
