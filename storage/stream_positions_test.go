package storage_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
)

// TestCurrentPositionsReadsEveryCounterInOneStatement: the timeline's
// position and the stream counters, read together, are what the
// one-stream reads return — also after writes to the counters — in one
// round trip; a counter that does not exist is an error, not a zero.
func TestCurrentPositionsReadsEveryCounterInOneStatement(t *testing.T) {
	svc, st, pool := newCountedRoomService(t)
	sync := storage.NewSync(st)
	accountData, receipts, keys := storage.NewAccountData(pool), storage.NewReceipts(pool), storage.NewKeys(pool)
	ctx := context.Background()
	alice := uniqueUser(t, "alice")
	names := []string{"account_data", "receipts", "to_device", "device_lists"}
	one := func() []int64 {
		t.Helper()
		var out []int64
		for _, read := range []func(context.Context) (int64, error){accountData.AccountDataPos, receipts.ReceiptsPos, keys.ToDevicePos, keys.DeviceListPos} {
			p, err := read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		return out
	}
	check := func(step string) {
		t.Helper()
		if _, err := sync.CurrentStreamPos(ctx); err != nil { // the log catches up
			t.Fatal(err)
		}
		var pos int64
		var counters []int64
		var err error
		n := roundTrips(pool, func() { pos, counters, err = sync.CurrentPositions(ctx, names) })
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if n != 1 {
			t.Errorf("%s: %d round trips, want 1", step, n)
		}
		want := one()
		for i := range names {
			if counters[i] != want[i] {
				t.Errorf("%s: %s at %d, one-stream read says %d", step, names[i], counters[i], want[i])
			}
		}
		tl, err := st.CurrentStreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pos != tl {
			t.Errorf("%s: timeline at %d, CurrentStreamPos says %d", step, pos, tl)
		}
	}

	check("start")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := accountData.PutAccountData(ctx, alice, "", "m.test", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.MarkDeviceListChanged(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "t1", json.RawMessage(`{"body":"x"}`)); err != nil {
		t.Fatal(err)
	}
	check("after writes")

	if _, _, err := sync.CurrentPositions(ctx, []string{"receipts", "no_such_stream"}); err == nil || !strings.Contains(err.Error(), "no_such_stream") {
		t.Errorf("a missing counter: err = %v, want one naming it", err)
	}
}
