package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// latencyRow is the latency scenario's figures for one transport.
type latencyRow struct {
	Transport string `json:"transport"`
	SendOver  string `json:"send_over"` // http, or ws (request frames)
	Sent      int    `json:"sent"`      // sends acknowledged
	Received  int    `json:"received"`  // of those, delivered to the receiver
	Errors    int    `json:"errors"`    // failed sends and sync requests
	Limited   int64  `json:"limited"`   // timelines that came back limited
	Delivery  dist   `json:"delivery"`  // start of the send → receiver decoded it
	Send      dist   `json:"send"`      // the send's round trip
}

type latencyResult struct {
	Scenario string       `json:"scenario"`
	Messages int          `json:"messages"`
	Results  []latencyRow `json:"results"`
}

// latency sends messages one at a time, each only after the previous one
// was delivered (so the server is at low load), and times each from the
// start of its send to the moment the receiver, waiting in /sync, holds it.
// Sends go over HTTP, or with -send-over ws as request frames on a
// WebSocket connection of the sender's.
func (b *bench) latency(ctx context.Context) (any, error) {
	res := latencyResult{Scenario: "latency", Messages: b.cfg.messages}
	for _, tr := range b.cfg.transports {
		row, err := b.latencyOver(ctx, tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tr, err)
		}
		res.Results = append(res.Results, row)
	}
	rows := make([][]string, 0, len(res.Results))
	for _, r := range res.Results {
		rows = append(rows, append(append(append([]string{r.Transport, strconv.Itoa(r.Sent), strconv.Itoa(r.Received)},
			r.Delivery.cells()...), r.Send.cells()...), strconv.Itoa(r.Errors)))
	}
	b.o.table(fmt.Sprintf("latency: %d messages sent over %s, one at a time (ms)", b.cfg.messages, b.cfg.sendOver),
		[]string{"transport", "sent", "received", "deliv p50", "p90", "p99", "max", "send p50", "p90", "p99", "max", "errors"}, rows)
	return res, nil
}

// pair is a sender and a receiver in one room.
type pair struct {
	sender, receiver *user
	room             string
}

// newPair registers two users and puts them in a new room.
func (b *bench) newPair(ctx context.Context, role string) (pair, error) {
	us, err := b.reg.registerMany(ctx, role, 2)
	if err != nil {
		return pair{}, err
	}
	room, err := b.c.createRoom(ctx, us[0], "parley-bench "+role)
	if err != nil {
		return pair{}, err
	}
	if err := b.c.join(ctx, us[1], room); err != nil {
		return pair{}, err
	}
	return pair{sender: us[0], receiver: us[1], room: room}, nil
}

func (b *bench) latencyOver(ctx context.Context, transport string) (latencyRow, error) {
	row := latencyRow{Transport: transport, SendOver: b.cfg.sendOver}
	p, err := b.newPair(ctx, "lat")
	if err != nil {
		return row, err
	}
	got := make(chan delivery, 1024)
	stats := &connStats{}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := newReceiver(b.c, p.receiver, transport, stats, func(d delivery) {
		if d.room == p.room {
			select {
			case got <- d:
			default:
			}
		}
	})
	go r.run(rctx)
	readyCtx, readyCancel := context.WithTimeout(ctx, 30*time.Second)
	err = waitReady(readyCtx, []*receiver{r})
	readyCancel()
	if err != nil {
		return row, err
	}
	var via sender = httpSender{b.c, p.sender}
	if b.cfg.sendOver == webSocket {
		w, err := newWSRequester(ctx, b.c, p.sender)
		if err != nil {
			return row, err
		}
		defer w.close()
		via = w
	}
	m, err := b.through(ctx, p, via, got, b.cfg.messages, b.cfg.interval)
	row.Sent, row.Received, row.Errors = m.sent, len(m.delivery), m.errors+int(stats.errors.Load())
	row.Limited = stats.limited.Load()
	row.Delivery, row.Send = summarize(m.delivery), summarize(m.send)
	return row, err
}

// measured is what through collects.
type measured struct {
	sent, errors   int
	delivery, send []int64
}

// through sends n messages from p.sender, one at a time, waiting for each
// to reach the receiver that feeds got before the next (then pausing
// interval); a message not delivered within 10 s is counted missing, and
// three missing in a row end the run with an error.
func (b *bench) through(ctx context.Context, p pair, via sender, got <-chan delivery, n int, interval time.Duration) (measured, error) {
	var m measured
	missing := 0
	for i := range n {
		seq := int64(i)
		start := now()
		if _, err := sendOver(ctx, via, p.sender, p.room, seq, start); err != nil {
			if ctx.Err() != nil {
				return m, ctx.Err()
			}
			m.errors++
			continue
		}
		m.send = append(m.send, now()-start)
		m.sent++
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case d := <-got:
				if d.seq == seq {
					m.delivery = append(m.delivery, d.atNS-d.sentNS)
					missing = 0
					break wait
				}
			case <-timeout:
				if missing++; missing == 3 {
					return m, fmt.Errorf("three messages in a row were not delivered within 10 s")
				}
				break wait
			case <-ctx.Done():
				return m, ctx.Err()
			}
		}
		if interval > 0 {
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return m, ctx.Err()
			}
		}
	}
	return m, nil
}
