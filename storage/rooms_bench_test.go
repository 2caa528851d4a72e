package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
)

// BenchmarkSendMessage measures the whole send path on real Postgres:
// build against the cached head, auth check, hash and sign, and the
// persisting transaction (txnId dedup, event insert, sequence, stream
// position, commit). "one room" serialises every sender on the room's row
// lock; "room per sender" shows the throughput across rooms.
func BenchmarkSendMessage(b *testing.B) {
	svc, _ := newRoomService(b)
	ctx := context.Background()
	body := json.RawMessage(`{"msgtype":"m.text","body":"hello, benchmark"}`)
	var txn atomic.Int64

	b.Run("one room", func(b *testing.B) {
		alice := uniqueUser(b, "bench")
		room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
		if err != nil {
			b.Fatal(err)
		}
		v := rooms.Viewer{User: alice, Device: "BENCH"}
		b.ResetTimer()
		for b.Loop() {
			if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint(txn.Add(1)), body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one room parallel", func(b *testing.B) {
		alice := uniqueUser(b, "benchp")
		room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			v := rooms.Viewer{User: alice, Device: id.DeviceID(fmt.Sprint("D", txn.Add(1)))}
			for pb.Next() {
				if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint(txn.Add(1)), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// The 16-sender variants are issue #9's throughput scenario (16 senders,
	// separate rooms and one shared room) without HTTP: 8 goroutines per
	// GOMAXPROCS, 16 on the 2-core machines. Note that the pgtest server
	// runs with fsync off, so these show the CPU and lock cost of a send,
	// not the commit flush that bounds it in production
	// (docs/performance.md).
	b.Run("16 senders one room", func(b *testing.B) {
		alice := uniqueUser(b, "bench16")
		room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			v := rooms.Viewer{User: alice, Device: id.DeviceID(fmt.Sprint("D", txn.Add(1)))}
			for pb.Next() {
				if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint(txn.Add(1)), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("16 senders room each", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			user := id.NewUserID(fmt.Sprint("bench16r", txn.Add(1)), roomServer)
			room, err := svc.CreateRoom(ctx, user, rooms.CreateRequest{})
			if err != nil {
				b.Error(err)
				return
			}
			v := rooms.Viewer{User: user, Device: "D"}
			for pb.Next() {
				if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint(txn.Add(1)), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("room per sender parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			user := id.NewUserID(fmt.Sprint("benchr", txn.Add(1)), roomServer)
			room, err := svc.CreateRoom(ctx, user, rooms.CreateRequest{})
			if err != nil {
				b.Error(err)
				return
			}
			v := rooms.Viewer{User: user, Device: "D"}
			for pb.Next() {
				if _, err := svc.Send(ctx, v, room, "m.room.message", fmt.Sprint(txn.Add(1)), body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
