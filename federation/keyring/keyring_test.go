package keyring

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/signing"
)

type fetchKey struct {
	server id.ServerName
	keyID  string
}

// memStore is an in-memory Store; storage.ServerKeys is tested against
// Postgres in package storage.
type memStore struct {
	mu   sync.Mutex
	keys map[fetchKey]StoredKey
}

func (m *memStore) ServerKeys(_ context.Context, server id.ServerName) ([]StoredKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StoredKey
	for k, v := range m.keys {
		if k.server == server {
			out = append(out, v)
		}
	}
	return out, nil
}

func (m *memStore) StoreServerKeys(_ context.Context, keys []StoredKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[fetchKey]StoredKey{}
	}
	for _, k := range keys {
		m.keys[fetchKey{k.Server, k.KeyID}] = k
	}
	return nil
}

// network routes a keyring's requests to other in-memory keyrings.
type network struct {
	mu      sync.Mutex
	servers map[id.ServerName]*Keyring
	down    map[id.ServerName]bool
	// override answers a server's GET /_matrix/key/v2/server with other
	// bytes (forgeries).
	override map[id.ServerName][]byte
	calls    map[id.ServerName]int
}

func (n *network) DoUnsigned(ctx context.Context, dest id.ServerName, method, path string, reqBody, respBody any) error {
	n.mu.Lock()
	n.calls[dest]++
	srv, down, forged := n.servers[dest], n.down[dest], n.override[dest]
	n.mu.Unlock()
	if srv == nil || down {
		return errors.New("connection refused")
	}
	var out []byte
	switch path {
	case "/_matrix/key/v2/server":
		out = srv.KeyDocument()
		if forged != nil {
			out = forged
		}
	case "/_matrix/key/v2/query":
		var req queryRequest
		b, _ := json.Marshal(reqBody)
		_ = json.Unmarshal(b, &req)
		criteria := map[id.ServerName]map[string]int64{}
		for s, ks := range req.ServerKeys {
			criteria[s] = map[string]int64{}
			for k, c := range ks {
				criteria[s][k] = c.MinimumValidUntilTS
			}
		}
		res, err := srv.Query(ctx, criteria)
		if err != nil {
			return err
		}
		out, _ = json.Marshal(queryResponse{ServerKeys: res})
	default:
		return errors.New("404")
	}
	switch r := respBody.(type) {
	case *[]byte:
		*r = out
		return nil
	default:
		return json.Unmarshal(out, respBody)
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newNet() *network {
	return &network{servers: map[id.ServerName]*Keyring{}, down: map[id.ServerName]bool{},
		override: map[id.ServerName][]byte{}, calls: map[id.ServerName]int{}}
}

func (n *network) add(t *testing.T, name id.ServerName, c *clock, notaries map[id.ServerName]map[string]ed25519.PublicKey) *Keyring {
	t.Helper()
	k, err := signing.Generate("ed25519:" + string(name[:3]))
	if err != nil {
		t.Fatal(err)
	}
	kr := New(Config{ServerName: name, Key: k, ValidityPeriod: time.Hour, Notaries: notaries, Now: c.Now},
		&memStore{}, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.servers[name] = kr
	return kr
}

func TestKeyDocument(t *testing.T) {
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	kr := newNet().add(t, "hs1", c, nil)
	doc := kr.KeyDocument()
	keys, err := ParseKeyResponse(doc, "hs1", c.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KeyID != kr.SigningKey().ID() || !keys[0].Key.Equal(kr.SigningKey().Public()) {
		t.Fatalf("keys = %+v", keys)
	}
	if want := c.now.Add(time.Hour).UnixMilli(); keys[0].ValidUntilTS != want {
		t.Errorf("valid_until_ts = %d, want %d", keys[0].ValidUntilTS, want)
	}
	if _, err := ParseKeyResponse(doc, "hs2", c.now); err == nil {
		t.Error("a response for hs1 accepted as hs2's")
	}
}

func TestParseKeyResponseRefusesForgeries(t *testing.T) {
	c := &clock{time.Now()}
	kr := newNet().add(t, "hs1", c, nil)
	other, _ := signing.Generate("ed25519:hs1")
	doc, _ := canonicaljson.ParseStrict(kr.KeyDocument())
	unsigned := doc.Without("signatures")
	signedByOther, _ := signing.SignServer(unsigned, "hs1", other)
	// A key listed but the document signed by another key of the same id.
	tests := map[string][]byte{
		"signed by another key": canonicaljson.Encode(signedByOther),
		"unsigned":              canonicaljson.Encode(unsigned),
		"not JSON":              []byte("{"),
		"no verify keys":        canonicaljson.Encode(doc.With("verify_keys", canonicaljson.ObjectValue())),
		"no valid_until_ts":     canonicaljson.Encode(doc.Without("valid_until_ts")),
	}
	for name, raw := range tests {
		if _, err := ParseKeyResponse(raw, "hs1", c.now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestVerifyKeyFetchesAndCaches(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	n := newNet()
	hs1, hs2 := n.add(t, "hs1", c, nil), n.add(t, "hs2", c, nil)
	keyID := hs2.SigningKey().ID()

	pub, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli())
	if err != nil || !pub.Equal(hs2.SigningKey().Public()) {
		t.Fatalf("VerifyKey = %v, %v", pub, err)
	}
	// Cached: no second request, even with hs2 down.
	n.down["hs2"] = true
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
		t.Fatalf("cached key: %v", err)
	}
	if n.calls["hs2"] != 1 {
		t.Errorf("hs2 asked %d times, want 1", n.calls["hs2"])
	}
	// Our own key needs no request.
	if pub, err := hs1.VerifyKey(ctx, "hs1", hs1.SigningKey().ID(), 0); err != nil || !pub.Equal(hs1.SigningKey().Public()) {
		t.Errorf("own key: %v", err)
	}
	if _, err := hs1.VerifyKey(ctx, "hs1", "ed25519:other", 0); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("unknown own key: %v", err)
	}

	// After valid_until_ts (an hour) the key is not valid for a request
	// now, and hs2 being down, it cannot be renewed.
	c.now = c.now.Add(2 * time.Hour)
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("expired key: %v", err)
	}
	// Still valid for an event made before valid_until_ts (room v5+) and
	// for any event of room versions 1–4 (atTS 0).
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.Add(-90*time.Minute).UnixMilli()); err != nil {
		t.Errorf("event before valid_until_ts: %v", err)
	}
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, 0); err != nil {
		t.Errorf("atTS 0: %v", err)
	}
	// A failed fetch is not repeated at once; once hs2 is back and the
	// back-off has passed, the key is renewed.
	calls := n.calls["hs2"]
	n.down["hs2"] = false
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err == nil || n.calls["hs2"] != calls {
		t.Errorf("refetched within the back-off: %v, calls %d → %d", err, calls, n.calls["hs2"])
	}
	c.now = c.now.Add(time.Minute)
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
		t.Errorf("renewed key: %v", err)
	}
}

func TestSevenDayCap(t *testing.T) {
	fetched := int64(1_000_000)
	sk := StoredKey{ValidUntilTS: fetched + 30*24*3600*1000, FetchedTS: fetched}
	if ValidAt(sk, fetched+8*24*3600*1000) {
		t.Error("a key valid for 30 days was trusted beyond 7 days after its fetch")
	}
	if !ValidAt(sk, fetched+6*24*3600*1000) {
		t.Error("a key was not trusted within 7 days")
	}
	old := StoredKey{ValidUntilTS: fetched, FetchedTS: fetched, ExpiredTS: 500}
	if !ValidAt(old, 499) || ValidAt(old, 500) {
		t.Error("an old key must be valid strictly before expired_ts")
	}
}

func TestForgedDirectResponseRefused(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now()}
	n := newNet()
	hs1, hs2 := n.add(t, "hs1", c, nil), n.add(t, "hs2", c, nil)
	evil, _ := signing.Generate(hs2.SigningKey().ID())
	forged := New(Config{ServerName: "hs2", Key: evil, Now: c.Now}, &memStore{}, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	doc, _ := canonicaljson.ParseStrict(forged.KeyDocument())
	// The forger lists hs2's real key but cannot sign with it.
	doc = doc.With("verify_keys", canonicaljson.ObjectValue(canonicaljson.Member{Key: hs2.SigningKey().ID(),
		Value: canonicaljson.ObjectValue(canonicaljson.Member{Key: "key", Value: canonicaljson.StringValue(hs2.SigningKey().PublicBase64())})}))
	doc, _ = signing.SignServer(doc.Without("signatures"), "hs2", evil)
	n.override["hs2"] = canonicaljson.Encode(doc)
	if _, err := hs1.VerifyKey(ctx, "hs2", hs2.SigningKey().ID(), 0); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("forged key response: %v", err)
	}
}

func TestNotary(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now()}
	n := newNet()
	notary := n.add(t, "notary", c, nil)
	hs2 := n.add(t, "hs2", c, nil)
	keyID := hs2.SigningKey().ID()
	// The notary learns hs2's key while hs2 is up.
	if _, err := notary.VerifyKey(ctx, "hs2", keyID, 0); err != nil {
		t.Fatal(err)
	}
	n.down["hs2"] = true

	t.Run("configured notary key", func(t *testing.T) {
		hs1 := n.add(t, "hs1", c, map[id.ServerName]map[string]ed25519.PublicKey{
			"notary": {notary.SigningKey().ID(): notary.SigningKey().Public()}})
		pub, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli())
		if err != nil || !pub.Equal(hs2.SigningKey().Public()) {
			t.Fatalf("via notary: %v", err)
		}
	})
	t.Run("notary key fetched from the notary", func(t *testing.T) {
		hs3 := n.add(t, "hs3", c, map[id.ServerName]map[string]ed25519.PublicKey{"notary": {}})
		if _, err := hs3.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
			t.Fatalf("via notary: %v", err)
		}
	})
	t.Run("wrong configured notary key", func(t *testing.T) {
		wrong, _ := signing.Generate(notary.SigningKey().ID())
		hs4 := n.add(t, "hs4", c, map[id.ServerName]map[string]ed25519.PublicKey{
			"notary": {notary.SigningKey().ID(): wrong.Public()}})
		if _, err := hs4.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("notary with a wrong key: %v", err)
		}
	})
	t.Run("fetches counted", func(t *testing.T) {
		hs5 := n.add(t, "hs5", c, map[id.ServerName]map[string]ed25519.PublicKey{"notary": {}})
		if _, err := hs5.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			source, result string
			want           float64
		}{{"direct", "error", 1}, {"direct", "ok", 1}, {"notary", "ok", 1}} {
			// direct ok: the notary's own key, fetched from it.
			if got := testutil.ToFloat64(hs5.metrics.fetches.WithLabelValues(m.source, m.result)); got != m.want {
				t.Errorf("fetches %s %s = %v, want %v", m.source, m.result, got, m.want)
			}
		}
	})
	t.Run("query answers", func(t *testing.T) {
		res, err := notary.Query(ctx, map[id.ServerName]map[string]int64{"hs2": {}, "notary": {}, "unknown": {}})
		if err != nil || len(res) != 2 {
			t.Fatalf("Query = %d responses, %v; want hs2 and the notary's own", len(res), err)
		}
		for _, raw := range res {
			obj, _ := canonicaljson.ParseStrict(raw)
			if err := signing.Verify(obj, "notary", notary.SigningKey().ID(), notary.SigningKey().Public()); err != nil {
				t.Errorf("response not countersigned: %v", err)
			}
		}
		if _, err := notary.Query(ctx, tooMany()); !errors.Is(err, ErrTooManyServers) {
			t.Errorf("oversized query: %v", err)
		}
	})
}

func tooMany() map[id.ServerName]map[string]int64 {
	m := map[id.ServerName]map[string]int64{}
	for i := 0; i <= MaxQueryServers; i++ {
		m[id.ServerName("s"+string(rune('a'+i%26))+string(rune('a'+i/26)))] = nil
	}
	return m
}

// countingStore counts reads of the store.
type countingStore struct {
	memStore
	reads int
}

func (c *countingStore) ServerKeys(ctx context.Context, server id.ServerName) ([]StoredKey, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.memStore.ServerKeys(ctx, server)
}

func TestKeysServedFromMemory(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now()}
	n := newNet()
	hs2 := n.add(t, "hs2", c, nil)
	store := &countingStore{}
	k, _ := signing.Generate("ed25519:hs1")
	hs1 := New(Config{ServerName: "hs1", Key: k, Now: c.Now}, store, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for range 5 {
		if _, err := hs1.VerifyKey(ctx, "hs2", hs2.SigningKey().ID(), c.now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	// One read before the fetch, one after it (the fetch dropped the
	// memory copy), then memory.
	if store.reads != 2 {
		t.Errorf("store read %d times, want 2", store.reads)
	}
}

func TestMadeUpKeyIDsDoNotMultiplyFetches(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now()}
	n := newNet()
	hs1, hs2 := n.add(t, "hs1", c, nil), n.add(t, "hs2", c, nil)
	if _, err := hs1.VerifyKey(ctx, "hs2", hs2.SigningKey().ID(), c.now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	// A key id never seen is fetched at once (hs2 may have rotated its
	// key, rotation_test.go); that fetch did not bring it, so the next
	// made-up ones are not fetched (unknownKeyFloor).
	for _, keyID := range []string{"ed25519:a", "ed25519:b", "ed25519:c"} {
		if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("made-up key %s: %v", keyID, err)
		}
	}
	if n.calls["hs2"] != 2 {
		t.Errorf("hs2 asked %d times, want 2", n.calls["hs2"])
	}
	// A notary query for hs2 is answered from the cache, too.
	if res, err := hs1.Query(ctx, map[id.ServerName]map[string]int64{"hs2": {}}); err != nil || len(res) != 1 || n.calls["hs2"] != 2 {
		t.Errorf("notary query: %d responses, %v, hs2 asked %d times", len(res), err, n.calls["hs2"])
	}
}

func TestOldKeys(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	n := newNet()
	former, _ := signing.Generate("ed25519:old1")
	current, _ := signing.Generate("ed25519:new1")
	expired := c.now.Add(-time.Hour).UnixMilli()
	hs2 := New(Config{ServerName: "hs2", Key: current, Now: c.Now,
		OldKeys: []OldKey{{KeyID: former.ID(), Key: former.Public(), ExpiredTS: expired}}},
		&memStore{}, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.servers["hs2"] = hs2
	hs1 := n.add(t, "hs1", c, nil)

	keys, err := ParseKeyResponse(hs2.KeyDocument(), "hs2", c.now)
	if err != nil || len(keys) != 2 {
		t.Fatalf("key document: %+v, %v", keys, err)
	}
	for _, tt := range []struct {
		name string
		kr   *Keyring
	}{{"remote", hs1}, {"own", hs2}} {
		// The old key verifies what was made before it expired, not later,
		// and never a request made now.
		if _, err := tt.kr.VerifyKey(ctx, "hs2", former.ID(), expired-1); err != nil {
			t.Errorf("%s: old key before expiry: %v", tt.name, err)
		}
		if _, err := tt.kr.VerifyKey(ctx, "hs2", former.ID(), expired); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s: old key at expiry: %v", tt.name, err)
		}
		if _, err := tt.kr.VerifyKey(ctx, "hs2", former.ID(), c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s: old key now: %v", tt.name, err)
		}
		if _, err := tt.kr.VerifyKey(ctx, "hs2", former.ID(), 0); err != nil {
			t.Errorf("%s: old key for a room version ignoring validity: %v", tt.name, err)
		}
	}
}

// gatedFetcher holds every request until the gate opens.
type gatedFetcher struct {
	*network
	started chan struct{}
	gate    chan struct{}
}

func (g gatedFetcher) DoUnsigned(ctx context.Context, dest id.ServerName, method, path string, reqBody, respBody any) error {
	g.started <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.network.DoUnsigned(ctx, dest, method, path, reqBody, respBody)
}

// TestSharedFetchOutlivesItsStarter: a fetch others wait on is not cut
// short when the request that started it goes away.
func TestSharedFetchOutlivesItsStarter(t *testing.T) {
	c := &clock{time.Now()}
	n := newNet()
	hs2 := n.add(t, "hs2", c, nil)
	g := gatedFetcher{network: n, started: make(chan struct{}, 1), gate: make(chan struct{})}
	k, _ := signing.Generate("ed25519:hs1")
	hs1 := New(Config{ServerName: "hs1", Key: k, Now: c.Now}, &memStore{}, g, slog.New(slog.NewTextHandler(io.Discard, nil)))

	starterCtx, cancel := context.WithCancel(context.Background())
	starterDone := make(chan error, 1)
	go func() {
		_, err := hs1.VerifyKey(starterCtx, "hs2", hs2.SigningKey().ID(), 0)
		starterDone <- err
	}()
	<-g.started
	waiterDone := make(chan error, 1)
	go func() {
		_, err := hs1.VerifyKey(context.Background(), "hs2", hs2.SigningKey().ID(), 0)
		waiterDone <- err
	}()
	// Whether the waiter joined the fetch or comes after it, it must get
	// the key: without the shared fetch surviving the cancellation, it
	// would get the starter's error or be throttled.
	cancel()
	close(g.gate)
	if err := <-waiterDone; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	<-starterDone
}

func TestConcurrentLookupsShareOneFetch(t *testing.T) {
	c := &clock{time.Now()}
	n := newNet()
	hs2 := n.add(t, "hs2", c, nil)
	g := gatedFetcher{network: n, started: make(chan struct{}, 100), gate: make(chan struct{})}
	k, _ := signing.Generate("ed25519:hs1")
	hs1 := New(Config{ServerName: "hs1", Key: k, Now: c.Now}, &memStore{}, g, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := hs1.VerifyKey(context.Background(), "hs2", hs2.SigningKey().ID(), c.now.UnixMilli())
			errs <- err
		}()
	}
	<-g.started // one fetch is under way; the others wait on it or come after
	close(g.gate)
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("caller: %v", err)
		}
	}
	if n.calls["hs2"] != 1 {
		t.Errorf("hs2 asked %d times, want 1", n.calls["hs2"])
	}
}

// heldReadStore holds its first read of the store, after reading, until
// released: a read that began before a fetch stored the keys and ends
// after it.
type heldReadStore struct {
	memStore
	held    atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (s *heldReadStore) ServerKeys(ctx context.Context, server id.ServerName) ([]StoredKey, error) {
	keys, err := s.memStore.ServerKeys(ctx, server)
	if s.held.CompareAndSwap(false, true) {
		close(s.read)
		<-s.release
	}
	return keys, err
}

// TestAReadOverlappingAFetchDoesNotHideItsKeys: a lookup whose read of the
// store found nothing, but ended after another lookup's fetch stored the
// key, still gets the key, and so does every lookup after it (the empty
// read, kept in memory, hid the key for minutes: a joining server dropped
// every event of the room's state as unsigned).
func TestAReadOverlappingAFetchDoesNotHideItsKeys(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now()}
	n := newNet()
	hs2 := n.add(t, "hs2", c, nil)
	store := &heldReadStore{read: make(chan struct{}), release: make(chan struct{})}
	k, _ := signing.Generate("ed25519:hs1")
	hs1 := New(Config{ServerName: "hs1", Key: k, Now: c.Now}, store, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	keyID := hs2.SigningKey().ID()

	slow := make(chan error, 1)
	go func() {
		_, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli())
		slow <- err
	}()
	<-store.read
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
		t.Fatalf("the lookup that fetched: %v", err)
	}
	close(store.release)
	if err := <-slow; err != nil {
		t.Errorf("the lookup whose read overlapped the fetch: %v", err)
	}
	if _, err := hs1.VerifyKey(ctx, "hs2", keyID, c.now.UnixMilli()); err != nil {
		t.Errorf("a lookup after both: %v", err)
	}
	if n.calls["hs2"] != 1 {
		t.Errorf("hs2 asked %d times, want 1", n.calls["hs2"])
	}
}
