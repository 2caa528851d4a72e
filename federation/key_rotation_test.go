package federation_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// TestSigningKeyRotatedWhileRunning: hs1's key is rotated (as `parley
// keys rotate` does) while it runs and reloaded without a restart. hs2,
// which first talks to hs1 after the rotation, verifies hs1's requests
// and new events with the new key, and the events hs1 signed before with
// the former key, which hs1 announces in old_verify_keys.
func TestSigningKeyRotatedWhileRunning(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob := register(t, hs1, "alice"), register(t, hs2, "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	before := alice.send(t, room, "signed with the first key")
	oldID := hs1.App.SigningKey().ID()

	formerID, newID, err := app.RotateSigningKey(hs1.Config.DataDir, time.Now())
	if err != nil || formerID != oldID || newID == oldID {
		t.Fatalf("rotate: %s -> %s, %v (running with %s)", formerID, newID, err, oldID)
	}
	if changed, err := hs1.App.ReloadSigningKey(); err != nil || !changed {
		t.Fatalf("reload: %v, %v", changed, err)
	}
	if got := hs1.App.SigningKey().ID(); got != newID {
		t.Fatalf("running with %s after the reload, want %s", got, newID)
	}
	if changed, err := hs1.App.ReloadSigningKey(); err != nil || changed {
		t.Errorf("a second reload changed the key: %v, %v", changed, err)
	}

	// The key server: the new key, the former one as old.
	ctx := context.Background()
	c := hs2.App.FederationClient()
	var doc struct {
		VerifyKeys    map[string]any `json:"verify_keys"`
		OldVerifyKeys map[string]struct {
			ExpiredTS int64 `json:"expired_ts"`
		} `json:"old_verify_keys"`
	}
	if err := c.DoUnsigned(ctx, hs1.Name, http.MethodGet, "/_matrix/key/v2/server", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.VerifyKeys[newID]; !ok || len(doc.VerifyKeys) != 1 {
		t.Errorf("verify_keys %v, want only %s", doc.VerifyKeys, newID)
	}
	if old, ok := doc.OldVerifyKeys[oldID]; !ok || old.ExpiredTS == 0 {
		t.Errorf("old_verify_keys %v, want %s with its expired_ts", doc.OldVerifyKeys, oldID)
	}

	// bob joins through hs1 (requests both ways, the room's events signed
	// by the former key), then alice sends with the new key.
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(hs1.Name), map[string]any{})
	after := alice.send(t, room, "signed with the new key")
	sees(t, bob, room, after)

	v := roomversion.MustLookup("11")
	signedBy := func(eventID string) map[string]string {
		t.Helper()
		raw, err := c.GetEvent(ctx, hs1.Name, id.EventID(eventID))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Parse(v, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := event.Verify(ctx, ev, hs2.App.Keyring().VerifyKey); err != nil {
			t.Errorf("%s does not verify on hs2: %v", eventID, err)
		}
		return ev.Signatures()[hs1.Name]
	}
	if sigs := signedBy(after); sigs[newID] == "" || len(sigs) != 1 {
		t.Errorf("the new event's signatures %v, want one by %s", sigs, newID)
	}
	if sigs := signedBy(before); sigs[oldID] == "" {
		t.Errorf("the old event's signatures %v, want one by %s", sigs, oldID)
	}
}

// metric sums the samples of a Prometheus counter that srv's metrics
// listener reports (every label set).
func metric(t *testing.T, srv *apptest.Server, name string) float64 {
	t.Helper()
	res, err := http.Get("http://" + srv.App.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if line != name && !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestARotatedKeyIsAcceptedAtOnceByAServerThatHasTheFormerOne: hs2 has
// fetched hs1's keys (bob joined a room of hs1) when hs1's key is
// rotated. hs1's first request signed with the new key is accepted by hs2
// at once, and so is its first transaction (no failed attempt); requests
// claiming to be hs1's, signed with key ids hs1 never had, cost hs1 at most
// one key fetch per second of the burst (keyring.unknownKeyFloor).
func TestARotatedKeyIsAcceptedAtOnceByAServerThatHasTheFormerOne(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	hs1, hs2 := srvs[0], srvs[1]
	alice, bob := register(t, hs1, "alice"), register(t, hs2, "bob")
	room := alice.createRoom(t, map[string]any{"room_version": "11", "preset": "public_chat"})
	bob.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name="+string(hs1.Name), map[string]any{})
	sees(t, bob, room, alice.send(t, room, "signed with the first key"))
	ctx := context.Background()
	oldID := hs1.App.SigningKey().ID()
	if _, err := hs2.App.Keyring().VerifyKey(ctx, hs1.Name, oldID, time.Now().UnixMilli()); err != nil {
		t.Fatalf("hs2 does not hold hs1's key: %v", err)
	}

	if _, _, err := app.RotateSigningKey(hs1.Config.DataDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if changed, err := hs1.App.ReloadSigningKey(); err != nil || !changed {
		t.Fatalf("reload: %v, %v", changed, err)
	}
	failures := metric(t, hs1, "parley_federation_transaction_failures_total")
	path := "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(bob.id)
	var profile map[string]any
	if err := hs1.App.FederationClient().Do(ctx, hs2.Name, http.MethodGet, path, nil, &profile); err != nil {
		t.Fatalf("hs1's first request signed with its new key: %v", err)
	}
	sees(t, bob, room, alice.send(t, room, "signed with the new key"))
	if got := metric(t, hs1, "parley_federation_transaction_failures_total"); got != failures {
		t.Fatalf("hs1's transactions failed %v times after the rotation", got-failures)
	}

	// Requests claiming to be hs1's, each with a key id hs1 never had.
	roots := x509.NewCertPool()
	roots.AddCert(hs2.CA.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: string(hs2.Name)}}}
	fetches := metric(t, hs2, "parley_federation_key_fetches_total")
	start := time.Now()
	for i := range 30 {
		junk, err := signing.Generate(fmt.Sprintf("ed25519:junk%d", i))
		if err != nil {
			t.Fatal(err)
		}
		auth, err := xmatrix.Sign(junk, hs1.Name, hs2.Name, http.MethodGet, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, hs2.FederationURL+path, nil)
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a request signed with a made-up key id of hs1: %d", res.StatusCode)
		}
	}
	elapsed := time.Since(start)
	got := metric(t, hs2, "parley_federation_key_fetches_total") - fetches
	if most := 1 + math.Ceil(elapsed.Seconds()); got < 1 || got > most {
		t.Fatalf("30 made-up key ids in %v: %v key fetches, want 1 to %v", elapsed, got, most)
	}
}
