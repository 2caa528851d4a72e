package storage_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestKeyCountsFollowClaimsAndUploads: the counts a sync carries are
// read once while they stay the same, and a claim or an upload is in the
// next answer.
func TestKeyCountsFollowClaimsAndUploads(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "DEV", "tok-counts", "")
	upload := func(ids ...string) {
		t.Helper()
		var otks []keys.OneTimeKey
		for _, k := range ids {
			otks = append(otks, keys.OneTimeKey{Algorithm: "signed_curve25519", KeyID: k, Key: json.RawMessage(`"` + k + `"`)})
		}
		if _, err := st.UploadKeys(ctx, u, "DEV", nil, otks, nil); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		counts, _, err := st.KeyCounts(ctx, u, "DEV")
		if err != nil {
			t.Fatal(err)
		}
		return counts["signed_curve25519"]
	}
	upload("A", "B", "C")
	if n := count(); n != 3 {
		t.Fatalf("after the upload: %d keys, want 3", n)
	}
	var n int
	if trips := roundTrips(pool, func() { n = count() }); trips != 0 || n != 3 {
		t.Errorf("unchanged: %d keys in %d round trips, want 3 in none", n, trips)
	}
	if c, err := st.ClaimKeys(ctx, []keys.ClaimRequest{{User: u, Device: "DEV", Algorithm: "signed_curve25519"}}); err != nil || len(c) != 1 {
		t.Fatalf("claim: %v, %v", c, err)
	}
	if n := count(); n != 2 {
		t.Errorf("after a claim: %d keys, want 2", n)
	}
	upload("D")
	if n := count(); n != 3 {
		t.Errorf("after another upload: %d keys, want 3", n)
	}
}

// TestToDeviceSkipsEmptyRangesAndStillAcknowledges: a device known to
// have nothing up to the range's end costs no query; a message sent
// later is taken, and what was acknowledged is not handed out again.
func TestToDeviceSkipsEmptyRangesAndStillAcknowledges(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "D1", "tok-tdskip", "")
	msg := json.RawMessage(`{"sender":"@a:test","type":"m.x","content":{}}`)
	send := func(txn string) int64 {
		t.Helper()
		pos, _, _, err := st.SendToDevice(ctx, keys.TxnKey{Sender: string(u), Device: "A", TxnID: txn},
			[]keys.ToDeviceMessage{{User: u, Device: "D1", Message: msg}})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	take := func(after, upTo int64) int {
		t.Helper()
		ms, err := st.TakeToDevice(ctx, u, "D1", after, upTo, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	p1 := send("t1")
	if n := take(0, p1); n != 1 {
		t.Fatalf("first take: %d messages, want 1", n)
	}
	if n := take(p1, p1); n != 0 { // acknowledges the first
		t.Fatalf("acknowledging take: %d messages", n)
	}
	var n int
	if trips := roundTrips(pool, func() { n = take(p1, p1) }); trips != 0 || n != 0 {
		t.Errorf("nothing new: %d messages in %d round trips, want none in none", n, trips)
	}
	if n := take(0, p1); n != 0 {
		t.Errorf("the acknowledged message again: %d", n)
	}
	p2 := send("t2")
	if n := take(p1, p2); n != 1 {
		t.Errorf("a later message: %d taken, want 1", n)
	}
	if n := take(0, p2); n != 1 {
		t.Errorf("not yet acknowledged: %d, want the later message again", n)
	}
	if n := take(p2, p2); n != 0 {
		t.Fatalf("acknowledging take: %d messages", n)
	}
	if n := take(0, p2); n != 0 {
		t.Errorf("after its acknowledgement: %d, want none", n)
	}
}

// TestKeyCountsForgetDeletedDevices: the counts are kept until they
// change, so a device deleted through the accounts store and created
// again under its id shows its old counts unless ForgetDevices follows
// the deletion — for the devices named, or for all of the user's (nil).
func TestKeyCountsForgetDeletedDevices(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	for _, forget := range []struct {
		name    string
		devices []id.DeviceID
	}{{"the device", []id.DeviceID{"DEV"}}, {"all of the user's", nil}} {
		t.Run(forget.name, func(t *testing.T) {
			login(t, accounts, u, "DEV", "tok-forget-"+forget.name, "")
			otks := []keys.OneTimeKey{{Algorithm: "curve25519", KeyID: "K", Key: json.RawMessage(`"K"`)}}
			if _, err := st.UploadKeys(ctx, u, "DEV", nil, otks, nil); err != nil {
				t.Fatal(err)
			}
			if counts, _, err := st.KeyCounts(ctx, u, "DEV"); err != nil || counts["curve25519"] != 1 {
				t.Fatalf("after the upload: %v, %v", counts, err)
			}
			if err := accounts.DeleteDevices(ctx, u, []id.DeviceID{"DEV"}); err != nil {
				t.Fatal(err)
			}
			st.ForgetDevices(u, forget.devices)
			login(t, accounts, u, "DEV", "tok-forget-again-"+forget.name, "")
			if counts, _, err := st.KeyCounts(ctx, u, "DEV"); err != nil || counts["curve25519"] != 0 {
				t.Errorf("created again: %v, %v; want no keys", counts, err)
			}
		})
	}
}
