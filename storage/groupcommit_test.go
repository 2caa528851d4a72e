package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestGroupCommitMixedBatch sends concurrently into many rooms and one
// shared room, with joins (membership rows) and forbidden sends (a
// non-member) mixed in, so that batches hold requests of several rooms,
// several requests of one room and failing requests. Every allowed send
// must be stored with its own stream position (none left at the batch's
// placeholder 0), the membership rows must carry their events' positions,
// the forbidden sends must fail alone, and the current position must cover
// every event.
func TestGroupCommitMixedBatch(t *testing.T) {
	key, err := signing.Generate("ed25519:test")
	if err != nil {
		t.Fatal(err)
	}
	pool := pgtest.NewPool(t)
	st := storage.NewRooms(pool)
	svc := rooms.New(rooms.Config{ServerName: roomServer, Key: key}, st, nil, nil, slog.Default())
	ctx := context.Background()

	const own, each = 8, 6
	alice := uniqueUser(t, "gc_alice")
	shared, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	type result struct {
		what string
		pos  int64
		err  error
	}
	results := make(chan result, 4*own*each)
	var (
		mu      sync.Mutex
		roomIDs = []string{string(shared)}
	)
	for g := range own {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := id.NewUserID(fmt.Sprintf("gc_%d_%d", g, testNumber(t)), roomServer)
			room, err := svc.CreateRoom(ctx, user, rooms.CreateRequest{})
			if err != nil {
				results <- result{what: "create", err: err}
				return
			}
			mu.Lock()
			roomIDs = append(roomIDs, string(room))
			mu.Unlock()
			if _, err := svc.Join(ctx, user, shared, ""); err != nil {
				results <- result{what: "join", err: err}
				return
			}
			for i := range each {
				_, err := svc.Send(ctx, rooms.Viewer{User: user, Device: "D"}, room, "m.room.message",
					fmt.Sprint("own", i), json.RawMessage(`{"body":"own"}`))
				results <- result{what: "own", err: err}
				_, err = svc.Send(ctx, rooms.Viewer{User: user, Device: "D"}, shared, "m.room.message",
					fmt.Sprint("shared", i), json.RawMessage(`{"body":"shared"}`))
				results <- result{what: "shared", err: err}
				// A stranger's send into this sender's private room fails
				// on the auth rules; it must not take the batch with it.
				stranger := rooms.Viewer{User: id.NewUserID(fmt.Sprintf("gc_x%d_%d", g, testNumber(t)), roomServer), Device: "D"}
				_, err = svc.Send(ctx, stranger, room, "m.room.message", fmt.Sprint("x", i), json.RawMessage(`{}`))
				results <- result{what: "forbidden", err: err}
			}
		}()
	}
	wg.Wait()
	close(results)
	var ok int
	for r := range results {
		switch {
		case r.what == "forbidden" && r.err == nil:
			t.Fatal("a non-member's send was accepted")
		case r.what != "forbidden" && r.err != nil:
			t.Fatalf("%s: %v", r.what, r.err)
		case r.err == nil:
			ok++
		}
	}
	if ok != 2*own*each {
		t.Fatalf("%d sends succeeded, want %d", ok, 2*own*each)
	}
	var unpositioned, duplicates, stale, beyond int
	err = pool.QueryRow(ctx, `
WITH mine AS (SELECT room_nid FROM rooms WHERE room_id = ANY($1)),
ev AS (SELECT * FROM events WHERE room_nid IN (SELECT room_nid FROM mine))
SELECT (SELECT count(*) FROM ev WHERE stream_pos <= 0),
       (SELECT count(*) - count(DISTINCT stream_pos) FROM ev),
       (SELECT count(*) FROM room_memberships m JOIN ev e ON e.room_nid = m.room_nid AND e.seq = m.seq
        WHERE m.stream_pos <> e.stream_pos),
       (SELECT count(*) FROM ev WHERE stream_pos > (SELECT pos FROM stream_position))`, roomIDs).
		Scan(&unpositioned, &duplicates, &stale, &beyond)
	if err != nil {
		t.Fatal(err)
	}
	if unpositioned != 0 || duplicates != 0 || stale != 0 || beyond != 0 {
		t.Fatalf("events without a position %d, sharing a position %d, membership rows off their event %d, beyond the current position %d",
			unpositioned, duplicates, stale, beyond)
	}
	evs, err := st.Timeline(ctx, shared, 0, rooms.Forward, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].StreamPos <= evs[i-1].StreamPos {
			t.Fatalf("shared room: seq %d at position %d after seq %d at %d: stream order is not room order",
				evs[i].Seq, evs[i].StreamPos, evs[i-1].Seq, evs[i-1].StreamPos)
		}
	}
}
