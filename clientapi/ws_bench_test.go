package clientapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/apptest"
)

// delivery is one event a receiver saw, and when.
type delivery struct {
	eventID string
	at      time.Time
}

// BenchmarkDeliveryLatency measures send → delivery: alice sends a message
// over HTTP and bob, in the same room, receives it over the WebSocket
// stream or over long-poll /sync; the time is from the start of the send
// to the moment bob's client has decoded the batch. It reports p50 and p99.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench DeliveryLatency -benchtime 2000x ./clientapi
func BenchmarkDeliveryLatency(b *testing.B) {
	for _, transport := range []string{"websocket", "longpoll"} {
		b.Run(transport, func(b *testing.B) {
			s := apptest.Start(b)
			_, aliceTok := s.Register(b, "alice", pw)
			_, bobTok := s.Register(b, "bob", pw)
			room := newRoom(b, s, aliceTok, obj{"preset": "public_chat"})
			roomPost(b, s, bobTok, room, "join", nil)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan delivery, 1024)
			since := mustSync(b, s, bobTok, "").NextBatch
			if transport == "websocket" {
				c := connectWS(b, s, bobTok)
				c.send(obj{"type": "sync", "since": since})
				go receiveWS(ctx, c.conn, room, got)
			} else {
				go receiveLongPoll(ctx, s, bobTok, since, room, got)
			}

			var latencies []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				want := sendText(b, s, aliceTok, room, fmt.Sprintf("b%d", i), "ping")
				i++
				for d := range got {
					if d.eventID == want {
						latencies = append(latencies, d.at.Sub(start))
						break
					}
				}
			}
			slices.Sort(latencies)
			if n := len(latencies); n > 0 {
				b.ReportMetric(float64(latencies[n/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(latencies[min(n-1, n*99/100)].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// receiveWS reads sync frames and reports the room's timeline events.
func receiveWS(ctx context.Context, conn *websocket.Conn, room string, got chan<- delivery) {
	defer close(got)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var f struct {
			Type string   `json:"type"`
			Body syncBody `json:"body"`
		}
		if json.Unmarshal(data, &f) != nil || f.Type != "sync" {
			continue
		}
		report(f.Body, room, got)
	}
}

// receiveLongPoll runs /sync long-polls one after the other, as a client
// does, and reports the room's timeline events.
func receiveLongPoll(ctx context.Context, s *apptest.Server, token, since, room string, got chan<- delivery) {
	defer close(got)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet,
			s.URL+v3+"/sync?timeout=30000&since="+url.QueryEscape(since), nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		var body syncBody
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil || body.NextBatch == "" {
			return
		}
		report(body, room, got)
		since = body.NextBatch
	}
}

func report(b syncBody, room string, got chan<- delivery) {
	now := time.Now()
	for _, ev := range b.Rooms.Join[room].Timeline.Events {
		got <- delivery{eventID: ev.EventID, at: now}
	}
}
