package fede2ee

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// dbConn connects to srv's database for the test's look at its tables.
func dbConn(t *testing.T, srv *apptest.Server) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, srv.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return conn
}

type outboxRow struct {
	streamID int64
	device   string
	prev     []int64
}

func outboxOf(t *testing.T, conn *pgx.Conn, user string) []outboxRow {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT stream_id, coalesce(device_id, ''), prev_ids FROM device_list_outbox WHERE user_id = $1 AND kind = 'device' ORDER BY stream_id`, user)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var r outboxRow
		err := row.Scan(&r.streamID, &r.device, &r.prev)
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeviceListOutboxSurvivesACrash: alice@hs1 adds a device and renames
// another while hs2 is down, and hs1 stops before it relays the changes'
// EDUs (as a crash right after the commits would: the outbox relay is
// held). After both restart, hs2's cache of alice's list has the new
// device and the new name, reached through the m.device_list_update chain
// (prev_id continuing what hs2 had, no gap, no resync).
func TestDeviceListOutboxSurvivesACrash(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
	})
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	alice, bob, _ := sharedRoom(t, hs1, hs2)
	alice.upload(t, 0)
	query := func() apptest.Response { return queryKeys(t, hs2, bob.token, alice.user) }
	waitFor(t, "alice's keys on hs2", func() bool { return field(query().Body, "device_keys", alice.user, alice.device) != nil })
	db1, db2 := dbConn(t, hs1), dbConn(t, hs2)
	cachedStream := func() int64 {
		var s int64
		if err := db2.QueryRow(ctx, `SELECT stream_id FROM remote_device_lists WHERE user_id = $1`, alice.user).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// hs2 is up to date: the first upload's EDU has been delivered.
	waitFor(t, "hs1's outbox and queue empty", func() bool {
		var n int
		_ = db1.QueryRow(ctx, `SELECT (SELECT count(*) FROM device_list_outbox) + (SELECT count(*) FROM federation_outbound_edus)`).Scan(&n)
		return n == 0
	})
	before := cachedStream()

	hs2.Stop(t)
	hs1.App.Keys().HoldOutbox(true)
	alice2 := &device{srv: hs1, user: alice.user, priv: alice.priv}
	res := hs1.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.password",
		"identifier": obj{"type": "m.id.user", "user": "alice"}, "password": "correct horse battery"})
	apptest.MustStatus(t, res, http.StatusOK)
	alice2.device, alice2.token = res.String("device_id"), res.String("access_token")
	alice2.upload(t, 0)
	apptest.MustStatus(t, hs1.Do(t, http.MethodPut, v3+"/devices/"+alice.device, alice.token, obj{"display_name": "Alice's laptop"}), http.StatusOK)
	hs1.Stop(t)

	// Both changes wait in the outbox, chained after what hs2 has.
	entries := outboxOf(t, db1, alice.user)
	if len(entries) != 2 || entries[0].device != alice2.device || entries[1].device != alice.device ||
		!slices.Equal(entries[0].prev, []int64{before}) || !slices.Equal(entries[1].prev, []int64{entries[0].streamID}) {
		t.Fatalf("outbox of alice: %+v, hs2's list at %d", entries, before)
	}

	hs2.Restart(t)
	hs1.Restart(t)
	waitFor(t, "alice's new device and name on hs2", func() bool {
		q := query()
		return field(q.Body, "device_keys", alice.user, alice2.device) != nil &&
			field(q.Body, "device_keys", alice.user, alice.device, "unsigned", "device_display_name") == "Alice's laptop"
	})
	if got := cachedStream(); got != entries[1].streamID {
		t.Fatalf("hs2's list of alice at %d, want %d", got, entries[1].streamID)
	}
	if gaps := hs2.App.Keys().Gaps(); gaps != 0 {
		t.Fatalf("hs2 saw %d gaps in alice's chain", gaps)
	}
	if left := outboxOf(t, db1, alice.user); len(left) != 0 {
		t.Fatalf("outbox left on hs1: %+v", left)
	}

	t.Run("a deleted device reaches hs2 through the chain", func(t *testing.T) {
		apptest.MustStatus(t, hs1.Do(t, http.MethodPost, v3+"/logout", alice2.token, obj{}), http.StatusOK)
		waitFor(t, "alice's deleted device gone on hs2", func() bool {
			return field(query().Body, "device_keys", alice.user, alice2.device) == nil
		})
		if gaps := hs2.App.Keys().Gaps(); gaps != 0 {
			t.Fatalf("hs2 saw %d gaps in alice's chain", gaps)
		}
	})
}
