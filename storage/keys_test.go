package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestKeysConcurrentClaimsHandOutEachKeyOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "DEV", "tok-claims", "")
	const n = 20
	otks := make([]keys.OneTimeKey, n)
	for i := range otks {
		otks[i] = keys.OneTimeKey{Algorithm: "signed_curve25519", KeyID: fmt.Sprintf("K%02d", i), Key: json.RawMessage(fmt.Sprintf(`"k%d"`, i))}
	}
	fallback := []keys.OneTimeKey{{Algorithm: "signed_curve25519", KeyID: "FB", Key: json.RawMessage(`"fb"`)}}
	if _, err := st.UploadKeys(ctx, u, "DEV", nil, otks, fallback); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range n + 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := st.ClaimKeys(ctx, []keys.ClaimRequest{{User: u, Device: "DEV", Algorithm: "signed_curve25519"}})
			if err != nil || len(c) != 1 {
				t.Errorf("claim: %v %v", c, err)
				return
			}
			mu.Lock()
			got[c[0].KeyID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for k, times := range got {
		if k != "signed_curve25519:FB" && times != 1 {
			t.Errorf("%s handed out %d times", k, times)
		}
	}
	if len(got) != n+1 || got["signed_curve25519:FB"] != 10 {
		t.Fatalf("%d distinct keys, fallback %d times; want %d and 10", len(got), got["signed_curve25519:FB"], n+1)
	}
	counts, fallbacks, err := st.KeyCounts(ctx, u, "DEV")
	if err != nil || counts["signed_curve25519"] != 0 || len(fallbacks) != 0 {
		t.Fatalf("counts %v, unused fallbacks %v, %v", counts, fallbacks, err)
	}
}

func TestKeyBackupKeepsTheBetterKey(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	st := storage.NewKeys(pool)
	u := id.UserID("@backup:test")
	v, err := st.CreateBackup(ctx, u, "alg", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	key := func(fmi, fwd int64, verified bool, data string) keys.BackupKey {
		return keys.BackupKey{Room: "!r:test", SessionID: "s", FirstMessageIndex: fmi, ForwardedCount: fwd,
			IsVerified: verified, SessionData: json.RawMessage(`{"d":"` + data + `"}`)}
	}
	// Each step puts a key over the one the previous steps left.
	for _, tc := range []struct {
		name string
		put  keys.BackupKey
		kept string
	}{
		{"first key", key(5, 2, false, "a"), "a"},
		{"higher index loses", key(6, 0, false, "b"), "a"},
		{"lower index wins", key(4, 9, false, "c"), "c"},
		{"same index, more forwards loses", key(4, 10, false, "d"), "c"},
		{"same index, fewer forwards wins", key(4, 1, false, "e"), "e"},
		{"verified wins over a better index", key(9, 9, true, "f"), "f"},
		{"unverified loses to verified", key(0, 0, false, "g"), "f"},
		{"verified with a lower index wins", key(1, 9, true, "h"), "h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := st.Backup(ctx, u, v)
			after, err := st.PutBackupKeys(ctx, u, v, []keys.BackupKey{tc.put})
			if err != nil {
				t.Fatal(err)
			}
			ks, err := st.BackupKeys(ctx, u, v, "", "")
			if err != nil || len(ks) != 1 {
				t.Fatalf("keys %v %v", ks, err)
			}
			if string(ks[0].SessionData) != `{"d":"`+tc.kept+`"}` {
				t.Fatalf("kept %s, want %s", ks[0].SessionData, tc.kept)
			}
			// The etag moves exactly when the put key was kept.
			won := string(tc.put.SessionData) == string(ks[0].SessionData)
			if changed := after.ETag != before.ETag; changed != won {
				t.Fatalf("etag %d → %d", before.ETag, after.ETag)
			}
		})
	}
}

func TestToDeviceStore(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "D1", "tok-td1", "")
	login(t, accounts, u, "D2", "tok-td2", "")
	msg := json.RawMessage(`{"sender":"@a:test","type":"m.x","content":{}}`)
	txn := keys.TxnKey{Sender: "@a:test", Device: "A", TxnID: "t1"}
	pos, who, dup, err := st.SendToDevice(ctx, txn, []keys.ToDeviceMessage{{User: u, Device: "*", Message: msg},
		{User: u, Device: "NOPE", Message: msg}, {User: "@nobody:test", Device: "*", Message: msg}})
	if err != nil || dup || pos == 0 || len(who) != 1 || who[0] != u {
		t.Fatalf("send: pos %d recipients %v dup %v err %v", pos, who, dup, err)
	}
	if _, _, dup, err := st.SendToDevice(ctx, txn, []keys.ToDeviceMessage{{User: u, Device: "*", Message: msg}}); err != nil || !dup {
		t.Fatalf("the same transaction again: dup %v, %v", dup, err)
	}
	// The same txn id from another device of the sender is another send.
	if _, _, dup, err := st.SendToDevice(ctx, keys.TxnKey{Sender: "@a:test", Device: "B", TxnID: "t1"}, nil); err != nil || dup {
		t.Fatalf("another device's txn: dup %v, %v", dup, err)
	}
	for _, d := range []id.DeviceID{"D1", "D2"} {
		ms, err := st.TakeToDevice(ctx, u, d, 0, pos, 10)
		if err != nil || len(ms) != 1 || ms[0].Pos != pos {
			t.Fatalf("%s: %v %v", d, ms, err)
		}
	}
	// Taking from pos acknowledges what lies at or below it.
	if ms, err := st.TakeToDevice(ctx, u, "D1", pos, pos, 10); err != nil || len(ms) != 0 {
		t.Fatalf("after pos: %v %v", ms, err)
	}
	if ms, _ := st.TakeToDevice(ctx, u, "D1", 0, pos, 10); len(ms) != 0 {
		t.Fatalf("acknowledged: %v", ms)
	}
	if ms, _ := st.TakeToDevice(ctx, u, "D2", 0, pos, 10); len(ms) != 1 {
		t.Fatalf("D2's message went with D1's acknowledgement: %v", ms)
	}
}
