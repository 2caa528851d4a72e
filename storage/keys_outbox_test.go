package storage_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/keys"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestDeviceListOutboxChain: every change of a local user's devices —
// key upload, rename, signature, deletion, cross-signing upload — writes
// its outbox entry in its own transaction; device entries form one chain
// (each prev_id the one before, a stream_id each), and the relay moves
// them into the federation queue's table, once.
func TestDeviceListOutboxChain(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "D1", "tok-ob1", "")
	login(t, accounts, u, "D2", "tok-ob2", "")
	dk := func(d string) json.RawMessage {
		return json.RawMessage(`{"device_id":"` + d + `","user_id":"` + string(u) + `"}`)
	}
	if _, err := st.UploadKeys(ctx, u, "D1", dk("D1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	// The same keys again are no change.
	if pos, err := st.UploadKeys(ctx, u, "D1", dk("D1"), nil, nil); err != nil || pos != 0 {
		t.Fatalf("same keys: %d %v", pos, err)
	}
	if _, err := st.UploadKeys(ctx, u, "D2", dk("D2"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := accounts.SetDeviceName(ctx, u, "D1", "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutSignatures(ctx, []keys.Signature{{TargetUser: u, TargetKey: "D2", Signer: u,
		SignerKeyID: "ed25519:SSK", Signature: "sig"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutCrossSigningKeys(ctx, u, map[string]json.RawMessage{keys.UsageMaster: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// Only the user-signing key: nothing leaves the server.
	if _, err := st.PutCrossSigningKeys(ctx, u, map[string]json.RawMessage{keys.UsageUserSigning: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := accounts.DeleteDevices(ctx, u, []id.DeviceID{"D2"}); err != nil {
		t.Fatal(err)
	}
	entries, err := st.DeviceListOutbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		kind, device string
		deleted      bool
	}
	var got []step
	var prev int64
	for _, e := range entries {
		got = append(got, step{e.Kind, string(e.Device), e.Deleted})
		if e.Kind != keys.OutboxDevice {
			continue
		}
		want := []int64{}
		if prev != 0 {
			want = []int64{prev}
		}
		if !slices.Equal(e.PrevIDs, want) {
			t.Fatalf("entry %d: prev_id %v, want %v (%+v)", e.StreamID, e.PrevIDs, want, entries)
		}
		prev = e.StreamID
	}
	want := []step{{"device", "D1", false}, {"device", "D2", false}, {"device", "D1", false},
		{"device", "D2", false}, {"signing", "", false}, {"device", "D2", true}}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox: %+v, want %+v", got, want)
	}
	if head, err := st.OutboundHead(ctx, u); err != nil || head != prev {
		t.Fatalf("head %d (%v), want %d", head, err, prev)
	}

	// The relay: entries go into the queue's table for their
	// destinations, once, in order; a second relay of the same entries
	// (another node's) adds nothing.
	var edus []keys.RelayedEDU
	for _, e := range entries {
		edus = append(edus, keys.RelayedEDU{StreamID: e.StreamID, Type: "m.device_list_update",
			Content: json.RawMessage(`{"stream_id":` + jsonInt(e.StreamID) + `}`), Destinations: []id.ServerName{"a.test", "b.test"}})
	}
	woken, err := st.RelayDeviceListOutbox(ctx, edus)
	if err != nil || !slices.Equal(woken, []id.ServerName{"a.test", "b.test"}) {
		t.Fatalf("relay: woken %v, %v", woken, err)
	}
	if woken, err := st.RelayDeviceListOutbox(ctx, edus); err != nil || len(woken) != 0 {
		t.Fatalf("second relay: woken %v, %v", woken, err)
	}
	rows, err := pool.Query(ctx, `SELECT content FROM federation_outbound_edus WHERE destination = 'a.test' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var queued []int64
	for rows.Next() {
		var raw []byte
		var c struct {
			StreamID int64 `json:"stream_id"`
		}
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(raw, &c)
		queued = append(queued, c.StreamID)
	}
	if len(queued) != len(entries) || !slices.IsSorted(queued) {
		t.Fatalf("queued for a.test: %v", queued)
	}
	if left, _ := st.DeviceListOutbox(ctx, 100); len(left) != 0 {
		t.Fatalf("outbox after the relay: %+v", left)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestToDeviceExpiry: undelivered messages older than the retention go,
// younger ones stay; a deleted device's and a deactivated user's inbox go
// with the devices.
func TestToDeviceExpiry(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewKeys(pool)
	u := newUser(t, accounts)
	login(t, accounts, u, "E1", "tok-ex1", "")
	login(t, accounts, u, "E2", "tok-ex2", "")
	msg := json.RawMessage(`{"sender":"@a:test","type":"m.x","content":{}}`)
	send := func(txnID string, device id.DeviceID) int64 {
		t.Helper()
		pos, _, _, err := st.SendToDevice(ctx, keys.TxnKey{Sender: "@a:test", Device: "A", TxnID: txnID},
			[]keys.ToDeviceMessage{{User: u, Device: device, Message: msg}})
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}
	old := send("old", "E1")
	young := send("young", "E1")
	if _, err := pool.Exec(ctx, `UPDATE to_device_messages SET ts = $1 WHERE stream_pos = $2`,
		time.Now().Add(-48*time.Hour).UnixMilli(), old); err != nil {
		t.Fatal(err)
	}
	n, err := st.ExpireToDevice(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	ms, err := st.TakeToDevice(ctx, u, "E1", 0, young, 10)
	if err != nil || len(ms) != 1 || ms[0].Pos != young {
		t.Fatalf("left for E1: %+v %v", ms, err)
	}
	count := func(d id.DeviceID) int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM to_device_messages WHERE user_id = $1 AND device_id = $2`, u, d).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	send("for-e2", "E2")
	if count("E2") != 1 {
		t.Fatal("E2 has no message")
	}
	if err := accounts.DeleteDevices(ctx, u, []id.DeviceID{"E2"}); err != nil {
		t.Fatal(err)
	}
	if count("E2") != 0 {
		t.Fatal("a deleted device's messages stayed")
	}
	if count("E1") != 1 {
		t.Fatal("E1's message went with E2")
	}
	if err := accounts.DeactivateAccount(ctx, u); err != nil {
		t.Fatal(err)
	}
	if count("E1") != 0 {
		t.Fatal("a deactivated user's messages stayed")
	}
}
