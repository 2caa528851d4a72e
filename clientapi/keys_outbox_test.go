package clientapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/id"
)

// relayedEDUs waits until the device list outbox is empty (every change
// relayed) and takes the EDUs the relay queued for dest from the
// federation queue's table (keys/outbox.go writes them there, not through
// the EDU sender).
func relayedEDUs(t *testing.T, s *apptest.Server, dest id.ServerName) []recordedEDU {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM device_list_outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d device list changes not relayed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rows, err := conn.Query(ctx, `DELETE FROM federation_outbound_edus WHERE destination = $1
AND edu_type IN ('m.device_list_update', 'm.signing_key_update') RETURNING seq, edu_type, content`, dest)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq     int64
		typ     string
		content []byte
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.seq, &x.typ, &x.content)
		return x, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []recordedEDU
	for _, r := range got {
		var c map[string]any
		if err := json.Unmarshal(r.content, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, recordedEDU{dest, r.typ, c})
	}
	return out
}
