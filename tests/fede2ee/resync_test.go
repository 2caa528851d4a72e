package fede2ee

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/federation/xmatrix"
)

// TestDeviceListResyncInBackground: a gap in bob@hs2's chain while hs2
// takes connections but never answers does not hold up the inbound EDU
// (the /send of the transaction that carried it): the resync runs in a
// worker, retried until hs2 answers, and the cache then holds hs2's list.
func TestDeviceListResyncInBackground(t *testing.T) {
	servers := apptest.StartFederation(t, 2, func(c *config.Config) {
		c.Federation.Queue.BackoffInitial = 50 * time.Millisecond
		c.Federation.Queue.BackoffMax = 500 * time.Millisecond
	})
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	alice, bob, _ := sharedRoom(t, hs1, hs2)
	bob.upload(t, 0)
	db1 := dbConn(t, hs1)
	cached := func() (int64, bool) {
		var s int64
		err := db1.QueryRow(ctx, `SELECT stream_id FROM remote_device_lists WHERE user_id = $1`, bob.user).Scan(&s)
		return s, err == nil
	}
	waitFor(t, "bob's list cached on hs1", func() bool {
		q := hs1.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{bob.user: []string{}}})
		_, ok := cached()
		return ok && field(q.Body, "device_keys", bob.user, bob.device) != nil
	})
	stream, _ := cached()

	// hs2 goes; in its place a listener that takes connections and
	// never answers.
	hs2.Stop(t)
	ln, err := net.Listen("tcp", hs2.Config.Listen.Federation)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	closeSilent := func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	}
	t.Cleanup(closeSilent)

	content, _ := json.Marshal(obj{"user_id": bob.user, "device_id": "GHOST", "stream_id": stream + 3000,
		"prev_id": []int64{stream + 2000}, "deleted": false, // stream+2000 was never seen: a gap
		"keys": obj{"user_id": bob.user, "device_id": "GHOST", "keys": obj{"ed25519:GHOST": "k"}}})
	start := time.Now()
	if err := hs1.App.Keys().HandleDeviceListUpdate(ctx, "hs2.test", content); err != nil {
		t.Fatal(err)
	}
	// The old code fetched bob's list here, for up to 10 s.
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the update with a gap took %v", took)
	}
	if _, ok := cached(); ok {
		t.Fatal("the list with a gap is still cached")
	}
	// The worker is trying hs2 (and hangs on it).
	select {
	case <-accepted:
	case <-time.After(20 * time.Second):
		t.Fatal("no resync attempt reached hs2")
	}
	var marked int
	if err := db1.QueryRow(ctx, `SELECT count(*) FROM remote_device_list_resyncs WHERE user_id = $1`, bob.user).Scan(&marked); err != nil || marked != 1 {
		t.Fatalf("resync mark: %d, %v", marked, err)
	}

	// hs2 answers again: the worker's retry fills the cache with its list.
	closeSilent()
	hs2.Restart(t)
	waitFor(t, "bob's list resynced on hs1", func() bool {
		s, ok := cached()
		var n int
		_ = db1.QueryRow(ctx, `SELECT count(*) FROM remote_device_list_resyncs`).Scan(&n)
		return ok && s == stream && n == 0
	})
	hs2.Stop(t)
	q := hs1.Do(t, http.MethodPost, v3+"/keys/query", alice.token, obj{"device_keys": obj{bob.user: []string{}}})
	apptest.MustStatus(t, q, http.StatusOK)
	m, _ := field(q.Body, "device_keys", bob.user).(map[string]any)
	var got []string
	for d := range m {
		got = append(got, d)
	}
	if !slices.Equal(got, []string{bob.device}) {
		t.Fatalf("bob's devices from hs1's cache with hs2 down: %v (%s)", got, q.Raw)
	}
}

// TestSendReturnsBeforeTheResync: a transaction to hs1 whose
// m.device_list_update has a gap in bob's chain gets its answer while
// bob's server (played by a double standing in for hs2) is still working
// on GET /user/devices; once it answers, hs1's cache holds its list.
func TestSendReturnsBeforeTheResync(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	ctx := context.Background()
	alice, bob, _ := sharedRoom(t, hs1, hs2)
	bob.upload(t, 0)
	query := func() apptest.Response { return queryKeys(t, hs1, alice.token, bob.user) }
	waitFor(t, "bob's keys on hs1", func() bool { return field(query().Body, "device_keys", bob.user, bob.device) != nil })

	// hs2 goes; a double answers for it, slowly: GET /user/devices waits
	// until the test lets it answer.
	hs2Key := hs2.App.SigningKey()
	hs2.Stop(t)
	double := fedtest.StartDouble(t, hs2.CA, "hs2.test", hs2.Config.Listen.Federation)
	asked := make(chan struct{}, 10)
	release := make(chan struct{})
	double.Handle("GET /_matrix/federation/v1/user/devices/{userId}", func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fedtest.WriteJSON(w, http.StatusOK, obj{"user_id": bob.user, "stream_id": 4242, "devices": []obj{{
			"device_id": "NEWDEV", "keys": obj{"user_id": bob.user, "device_id": "NEWDEV", "keys": obj{"ed25519:NEWDEV": "k"}},
		}}})
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	// The transaction, signed with hs2's own key, which hs1 knows.
	body, _ := json.Marshal(obj{"origin": "hs2.test", "origin_server_ts": time.Now().UnixMilli(), "pdus": []any{},
		"edus": []obj{{"edu_type": "m.device_list_update", "content": obj{"user_id": bob.user, "device_id": "GHOST",
			"stream_id": 9000, "prev_id": []int64{8999}, "deleted": false, // 8999 was never seen: a gap
			"keys": obj{"user_id": bob.user, "device_id": "GHOST", "keys": obj{"ed25519:GHOST": "k"}}}}}})
	uri := "/_matrix/federation/v1/send/gap1"
	auth, err := xmatrix.Sign(hs2Key, "hs2.test", "hs1.test", http.MethodPut, uri, body)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(hs1.Config.Federation.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "hs1.test"}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, hs1.FederationURL+uri, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/send: %d", resp.StatusCode)
	}
	// /send answered; the resync is under way (or about to be) and waits
	// for the double.
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatalf("no GET /user/devices reached bob's server (/send took %v)", took)
	}
	select {
	case <-release:
		t.Fatal("released too early")
	default:
	}
	if took > 5*time.Second {
		t.Fatalf("/send took %v", took)
	}
	close(release)
	waitFor(t, "bob's list from the resync", func() bool {
		q := query()
		return field(q.Body, "device_keys", bob.user, "NEWDEV") != nil && field(q.Body, "device_keys", bob.user, bob.device) == nil &&
			field(q.Body, "device_keys", bob.user, "GHOST") == nil
	})
}
