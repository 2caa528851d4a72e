package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
)

// initialSyncStep is the figures at one history size.
type initialSyncStep struct {
	History    int   `json:"history"`     // the tool's messages in each room
	EventsSent int64 `json:"events_sent"` // acknowledged so far, over all rooms
	SendErrors int64 `json:"send_errors"`
	// RoomsInSync is how many joined rooms the initial sync returned;
	// InitialBytes the size of its answer.
	RoomsInSync  int  `json:"rooms_in_sync"`
	InitialBytes int  `json:"initial_bytes"`
	Initial      dist `json:"initial"`
	// Incremental is a sync from the previous next_batch right after one
	// new message; IncrementalFound how many of them carried it.
	Incremental      dist `json:"incremental"`
	IncrementalFound int  `json:"incremental_found"`
	MessagesPage     dist `json:"messages_page"` // GET /messages?dir=b&limit=20 from the end
}

type initialSyncResult struct {
	Scenario string            `json:"scenario"`
	Rooms    int               `json:"rooms"`
	Steps    []initialSyncStep `json:"steps"`
}

// clientFilter is what a typical client syncs with: ten events per
// timeline, lazy-loaded members.
var clientFilter = map[string]any{
	"room": map[string]any{
		"timeline": map[string]any{"limit": 10},
		"state":    map[string]any{"lazy_load_members": true},
	},
}

// initialSync puts one user in R rooms and grows each room's history
// through the sizes of -history; at each size it times initial sync,
// incremental sync and a /messages page, so that the cost can be seen to
// follow the work (R rooms, one new event, 20 events) and not the history.
func (b *bench) initialSync(ctx context.Context) (any, error) {
	r := b.cfg.syncRooms
	res := initialSyncResult{Scenario: "initial-sync", Rooms: r}
	us, err := b.reg.registerMany(ctx, "reader", 1)
	if err != nil {
		return nil, err
	}
	u := us[0]
	var f struct {
		FilterID string `json:"filter_id"`
	}
	if err := b.c.do(ctx, http.MethodPost, "/_matrix/client/v3/user/"+url.PathEscape(u.ID)+"/filter", u.Token, clientFilter, &f); err != nil {
		return nil, fmt.Errorf("upload filter: %w", err)
	}
	b.o.progress("initial-sync: creating %d rooms", r)
	rooms := make([]string, r)
	if err := b.parallel(ctx, r, func(i int) error {
		var err error
		rooms[i], err = b.c.createRoom(ctx, u, "parley-bench history "+strconv.Itoa(i))
		return err
	}); err != nil {
		return nil, err
	}
	var sent, sendErrs atomic.Int64
	have := 0
	for _, h := range b.cfg.history {
		b.o.progress("initial-sync: filling %d rooms to %d messages each", r, h)
		from := have
		if err := b.parallel(ctx, r, func(i int) error {
			for seq := from; seq < h; seq++ {
				if _, err := b.c.send(ctx, u, rooms[i], int64(seq), now()); err != nil {
					if ctx.Err() != nil {
						return err
					}
					sendErrs.Add(1)
					continue
				}
				sent.Add(1)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		have = h
		step := initialSyncStep{History: h, EventsSent: sent.Load(), SendErrors: sendErrs.Load()}
		if err := b.measureSyncs(ctx, u, f.FilterID, rooms, &step); err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, step)
	}
	var rows [][]string
	for _, s := range res.Steps {
		rows = append(rows, []string{strconv.Itoa(s.History), strconv.FormatInt(s.EventsSent, 10), strconv.Itoa(s.RoomsInSync),
			strconv.Itoa(s.InitialBytes / 1024), f3(s.Initial.P50), f3(s.Initial.Max), f3(s.Incremental.P50),
			f3(s.Incremental.Max), f3(s.MessagesPage.P50), f3(s.MessagesPage.Max)})
	}
	b.o.table(fmt.Sprintf("initial-sync: one user in %d rooms (ms)", r),
		[]string{"history", "events", "rooms", "KiB", "initial p50", "max", "incr p50", "max", "/messages p50", "max"}, rows)
	return res, nil
}

// measureSyncs takes -sync-samples of each measurement.
func (b *bench) measureSyncs(ctx context.Context, u *user, filter string, rooms []string, step *initialSyncStep) error {
	var initial, incr, page []int64
	since := ""
	for range b.cfg.syncSamples {
		q := url.Values{"filter": {filter}, "timeout": {"0"}}
		var raw json.RawMessage
		t0 := now()
		if err := b.c.do(ctx, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil, &raw); err != nil {
			return fmt.Errorf("initial sync: %w", err)
		}
		initial = append(initial, now()-t0)
		var body syncBody
		if err := json.Unmarshal(raw, &body); err != nil {
			return fmt.Errorf("initial sync: %w", err)
		}
		step.RoomsInSync, step.InitialBytes, since = len(body.Rooms.Join), len(raw), body.NextBatch
	}
	for i := range b.cfg.syncSamples {
		room := rooms[i%len(rooms)]
		marker := int64(1_000_000_000 + i)
		if _, err := b.c.send(ctx, u, room, marker, now()); err != nil {
			return fmt.Errorf("send before incremental sync: %w", err)
		}
		q := url.Values{"filter": {filter}, "timeout": {"0"}, "since": {since}}
		var body syncBody
		t0 := now()
		if err := b.c.do(ctx, http.MethodGet, "/_matrix/client/v3/sync?"+q.Encode(), u.Token, nil, &body); err != nil {
			return fmt.Errorf("incremental sync: %w", err)
		}
		incr = append(incr, now()-t0)
		since = body.NextBatch
		for _, ev := range body.Rooms.Join[room].Timeline.Events {
			if ev.Content.Seq != nil && *ev.Content.Seq == marker {
				step.IncrementalFound++
			}
		}
	}
	for i := range b.cfg.syncSamples {
		q := url.Values{"dir": {"b"}, "limit": {"20"}}
		t0 := now()
		if err := b.c.do(ctx, http.MethodGet, roomPath(rooms[i%len(rooms)], "/messages?"+q.Encode()), u.Token, nil, nil); err != nil {
			return fmt.Errorf("/messages: %w", err)
		}
		page = append(page, now()-t0)
	}
	step.Initial, step.Incremental, step.MessagesPage = summarize(initial), summarize(incr), summarize(page)
	return nil
}
