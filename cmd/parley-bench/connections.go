package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// connectionsRow is one transport of the connections scenario.
type connectionsRow struct {
	Transport   string `json:"transport"`
	Connections int    `json:"connections"` // idle sync connections opened
	Users       int    `json:"users"`       // distinct users they belong to
	// Held is how many were established at the end of the hold, HeldMin
	// the fewest seen at any one-second sample during it.
	Held    int64   `json:"held"`
	HeldMin int64   `json:"held_min"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"hold_s"`
	// RSS of the server (-pid): before the crowd connected, and the
	// largest sampled while it was held; per connection is their
	// difference over Held.
	RSSBeforeMB  *float64 `json:"rss_before_mb,omitempty"`
	RSSMB        *float64 `json:"rss_mb,omitempty"`
	RSSPerConnKB *float64 `json:"rss_per_conn_kb,omitempty"`
	Messages     int      `json:"messages"` // sent through the crowd
	Received     int      `json:"received"`
	Latency      dist     `json:"latency"`
}

type connectionsResult struct {
	Scenario string `json:"scenario"`
	// RSSAtStartMB is the server's RSS when the tool started, before any
	// scenario: with -start, a fresh idle server's.
	RSSAtStartMB *float64         `json:"rss_at_start_mb,omitempty"`
	Results      []connectionsRow `json:"results"`
}

// connectionsScenario holds S idle sync connections per transport (users
// in no room with the measuring pair, so nothing wakes them), reads the
// server's RSS, and sends messages between a pair through the crowd,
// spread over the hold.
func (b *bench) connectionsScenario(ctx context.Context) (any, error) {
	res := connectionsResult{Scenario: "connections", RSSAtStartMB: b.rssAtStart}
	crowd, err := b.reg.registerMany(ctx, "idle", min(b.cfg.connUsers, b.cfg.connections))
	if err != nil {
		return nil, err
	}
	for _, tr := range b.cfg.transports {
		b.o.progress("connections: %d idle over %s for %s", b.cfg.connections, tr, b.cfg.hold)
		row, err := b.holdConnections(ctx, crowd, tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tr, err)
		}
		res.Results = append(res.Results, row)
	}
	var rows [][]string
	for _, r := range res.Results {
		rows = append(rows, append([]string{r.Transport, strconv.Itoa(r.Connections), strconv.FormatInt(r.Held, 10),
			strconv.FormatInt(r.HeldMin, 10), optMB(r.RSSBeforeMB), optMB(r.RSSMB), optMB(r.RSSPerConnKB),
			fmt.Sprintf("%d/%d", r.Received, r.Messages)}, r.Latency.cells()...))
	}
	b.o.table(fmt.Sprintf("connections: idle sync connections held (RSS in MB, at the tool's start %s; per connection in KB; latency in ms)", optMB(b.rssAtStart)),
		[]string{"transport", "opened", "held", "held min", "rss before", "rss held", "per conn", "delivered", "p50", "p90", "p99", "max"}, rows)
	return res, nil
}

func optMB(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func (b *bench) holdConnections(ctx context.Context, crowd []*user, transport string) (connectionsRow, error) {
	s := b.cfg.connections
	row := connectionsRow{Transport: transport, Connections: s, Users: len(crowd)}
	p, err := b.newPair(ctx, "conn")
	if err != nil {
		return row, err
	}
	rssBefore := b.rssMB()
	row.RSSBeforeMB = rssBefore

	stats := &connStats{}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Connect with bounded concurrency: each connection's first (initial)
	// sync must be done before the next slot opens, so that connecting is
	// not itself a stampede.
	slots := make(chan struct{}, 4*b.cfg.setupConcurrency)
	rs := make([]*receiver, s)
	for i := range s {
		rs[i] = newReceiver(b.c, crowd[i%len(crowd)], transport, stats, nil)
		if b.cfg.pollTimeout > 0 {
			rs[i].pollTimeout = b.cfg.pollTimeout
		}
		wg.Go(func() { rs[i].run(rctx) })
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return row, ctx.Err()
		}
		go func() {
			select {
			case <-rs[i].ready:
			case <-rs[i].stopped:
			case <-rctx.Done():
			}
			<-slots
		}()
	}
	setup := b.cfg.connSetup
	if setup <= 0 {
		setup = time.Minute + time.Duration(s)*10*time.Millisecond
	}
	readyCtx, readyCancel := context.WithTimeout(ctx, setup)
	err = waitReady(readyCtx, rs)
	readyCancel()
	if err != nil {
		// A server (or a machine: file descriptors) that cannot hold them
		// all is a result, not a failure: Held says how many it held.
		b.o.progress("connections: only %d of %d established in time; holding those", stats.held.Load(), s)
	}

	// The measuring pair, and samples of the crowd and the RSS each second.
	got := make(chan delivery, 1024)
	pairStats := &connStats{}
	r := newReceiver(b.c, p.receiver, transport, pairStats, func(d delivery) {
		if d.room == p.room {
			select {
			case got <- d:
			default:
			}
		}
	})
	wg.Go(func() { r.run(rctx) })
	if err := waitReady(ctx, []*receiver{r}); err != nil {
		return row, err
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var peak *float64
	row.HeldMin = stats.held.Load()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if v := b.rssMB(); v != nil && (peak == nil || *v > *peak) {
				peak = v
			}
			row.HeldMin = min(row.HeldMin, stats.held.Load())
			select {
			case <-tick.C:
			case <-sampleCtx.Done():
				return
			}
		}
	}()
	start := time.Now()
	interval := b.cfg.hold / time.Duration(b.cfg.connMessages)
	m, err := b.through(ctx, p, httpSender{b.c, p.sender}, got, b.cfg.connMessages, interval)
	if rest := b.cfg.hold - time.Since(start); rest > 0 && err == nil {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	row.Held = stats.held.Load()
	stopSampling()
	<-sampled
	row.Seconds = round3(time.Since(start).Seconds())
	row.Errors = stats.errors.Load() + pairStats.errors.Load() + int64(m.errors)
	row.Messages, row.Received, row.Latency = m.sent, len(m.delivery), summarize(m.delivery)
	row.RSSMB = peak
	if peak != nil && rssBefore != nil && row.Held > 0 {
		kb := round3((*peak - *rssBefore) * 1024 / float64(row.Held))
		row.RSSPerConnKB = &kb
	}
	return row, err
}

// rssMB reads the server's resident set size from /proc/<pid>/status
// (VmRSS); nil without -pid or when it cannot be read.
func (b *bench) rssMB() *float64 {
	if b.cfg.pid == 0 {
		return nil
	}
	kb, err := readRSSKB(b.cfg.pid)
	if err != nil {
		return nil
	}
	v := round3(float64(kb) / 1024)
	return &v
}

func readRSSKB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
