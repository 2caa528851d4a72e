package fede2ee

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/id"
)

// TestRemoteDeviceListCache: hs1 keeps bob@hs2's device list once alice
// has queried it, follows bob's m.device_list_update chain (applies what
// continues it, resyncs on a gap) and answers /keys/query from it — with
// hs2 down.
func TestRemoteDeviceListCache(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
	})
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	alice, bob, room := sharedRoom(t, hs1, hs2)
	bob.upload(t, 0)
	query := func() apptest.Response { return queryKeys(t, hs1, alice.token, bob.user) }
	bobDevices := func(q apptest.Response) []string {
		m, _ := field(q.Body, "device_keys", bob.user).(map[string]any)
		var out []string
		for d := range m {
			out = append(out, d)
		}
		slices.Sort(out)
		return out
	}
	waitFor(t, "bob's keys on hs1", func() bool { return field(query().Body, "device_keys", bob.user, bob.device) != nil })
	// hs2's position of bob's list, which hs1 cached with it.
	streamID := func() int64 {
		raw, err := hs2.App.Keys().UserDevices(ctx, id.UserID(bob.user))
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			StreamID int64 `json:"stream_id"`
		}
		_ = json.Unmarshal(raw, &b)
		return b.StreamID
	}
	update := func(device string, stream int64, prev []int64) {
		t.Helper()
		content, _ := json.Marshal(obj{"user_id": bob.user, "device_id": device, "stream_id": stream, "prev_id": prev,
			"deleted": false, "keys": obj{"user_id": bob.user, "device_id": device, "keys": obj{"ed25519:" + device: "k"}}})
		if err := hs1.App.Keys().HandleDeviceListUpdate(ctx, "hs2.test", content); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("an update continuing the chain is applied to the cache", func(t *testing.T) {
		s := streamID()
		update("PHANTOM", s+1000, []int64{s})
		// hs2 has no such device: only the cache can answer it.
		if got := bobDevices(query()); !slices.Contains(got, "PHANTOM") {
			t.Fatalf("bob's devices on hs1 after the update: %v", got)
		}
	})

	t.Run("keys of another user in an update are not served", func(t *testing.T) {
		s := streamID() + 1000 // the cached list's position after the update above
		content, _ := json.Marshal(obj{"user_id": bob.user, "device_id": "FOREIGN", "stream_id": s + 500, "prev_id": []int64{s},
			"keys": obj{"user_id": alice.user, "device_id": "FOREIGN", "keys": obj{"ed25519:FOREIGN": "k"}}})
		if err := hs1.App.Keys().HandleDeviceListUpdate(ctx, "hs2.test", content); err != nil {
			t.Fatal(err)
		}
		if got := bobDevices(query()); slices.Contains(got, "FOREIGN") || !slices.Contains(got, "PHANTOM") {
			t.Fatalf("bob's devices on hs1: %v", got)
		}
	})

	t.Run("a gap in prev_id resyncs from the user's server", func(t *testing.T) {
		s := streamID()
		update("PHANTOM2", s+3000, []int64{s + 2000}) // s+2000 was never seen
		if got := bobDevices(query()); !slices.Equal(got, []string{bob.device}) {
			t.Fatalf("bob's devices on hs1 after the resync: %v, want hs2's [%s]", got, bob.device)
		}
	})

	// bob2 is a second device of bob's, with keys.
	bob2 := &device{srv: hs2, user: bob.user, priv: bob.priv}
	t.Run("a new device is answered from the cache with hs2 down", func(t *testing.T) {
		res := hs2.Do(t, http.MethodPost, v3+"/login", "", obj{"type": "m.login.password",
			"identifier": obj{"type": "m.id.user", "user": "bob"}, "password": "correct horse battery"})
		apptest.MustStatus(t, res, http.StatusOK)
		bob2.device, bob2.token = res.String("device_id"), res.String("access_token")
		bob2.upload(t, 0)
		waitFor(t, "bob's new device on hs1", func() bool { return slices.Contains(bobDevices(query()), bob2.device) })
		hs2.Stop(t)
		q := query()
		if got := bobDevices(q); !slices.Contains(got, bob2.device) || !slices.Contains(got, bob.device) {
			t.Fatalf("bob's devices with hs2 down: %v (%s)", got, q.Raw)
		}
		if f, _ := field(q.Body, "failures").(map[string]any); len(f) != 0 {
			t.Fatalf("hs2 was asked: failures %v", f)
		}
		hs2.Restart(t)
	})

	t.Run("a deleted device leaves the cache", func(t *testing.T) {
		apptest.MustStatus(t, hs2.Do(t, http.MethodPost, v3+"/logout", bob2.token, obj{}), http.StatusOK)
		waitFor(t, "bob's deleted device gone on hs1", func() bool { return !slices.Contains(bobDevices(query()), bob2.device) })
		hs2.Stop(t)
		q := query()
		if got := bobDevices(q); !slices.Equal(got, []string{bob.device}) {
			t.Fatalf("bob's devices with hs2 down: %v (%s)", got, q.Raw)
		}
		if f, _ := field(q.Body, "failures").(map[string]any); len(f) != 0 {
			t.Fatalf("hs2 was asked: failures %v", f)
		}
	})
	t.Run("the list is dropped when bob shares no room with a local user", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, hs1.Config.Database.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		cached := func() int {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM remote_device_lists WHERE user_id = $1`, bob.user).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if cached() != 1 {
			t.Fatal("bob's list is not cached on hs1")
		}
		hs2.Restart(t)
		apptest.MustStatus(t, hs2.Do(t, http.MethodPost, v3+"/rooms/"+url.PathEscape(room)+"/leave", bob.token, obj{}), http.StatusOK)
		waitFor(t, "bob's list dropped on hs1", func() bool { return cached() == 0 })
	})
}
