package fedclient

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
)

func srvTargets(recs []*net.SRV) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Target
	}
	return out
}

// TestOrderSRV: priorities in ascending order, every record of a priority
// before the next, and within a priority the weights' odds (RFC 2782).
func TestOrderSRV(t *testing.T) {
	records := []*net.SRV{
		{Target: "p20.", Priority: 20, Weight: 5},
		{Target: "p10-heavy.", Priority: 10, Weight: 90},
		{Target: "p30.", Priority: 30},
		{Target: "p10-light.", Priority: 10, Weight: 10},
		{Target: "p10-zero.", Priority: 10, Weight: 0},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	firsts := map[string]int{}
	const runs = 2000
	for range runs {
		got := srvTargets(orderSRV(records, rng.IntN))
		if len(got) != len(records) {
			t.Fatalf("orderSRV lost records: %v", got)
		}
		if got[3] != "p20." || got[4] != "p30." {
			t.Fatalf("priorities out of order: %v", got)
		}
		firsts[got[0]]++
	}
	// Draws in [0, 100]: heavy wins 90/101, light 10/101, zero 1/101.
	if h := firsts["p10-heavy."]; h < runs*80/100 || h > runs*97/100 {
		t.Errorf("heavy record first %d times of %d, want about 89%%", h, runs)
	}
	if l := firsts["p10-light."]; l < runs*5/100 || l > runs*15/100 {
		t.Errorf("light record first %d times of %d, want about 10%%", l, runs)
	}
	if firsts["p10-zero."] > runs*3/100 {
		t.Errorf("zero-weight record first %d times of %d, want about 1%%", firsts["p10-zero."], runs)
	}
	// A draw of 0 picks the zero-weight record (it is placed first).
	if got := srvTargets(orderSRV(records, func(int) int { return 0 })); got[0] != "p10-zero." {
		t.Errorf("draw 0: %v", got)
	}
	if got := orderSRV(nil, rng.IntN); len(got) != 0 {
		t.Errorf("no records: %v", got)
	}
}

// TestDiscoveryKeepsEverySRVTarget: every usable record of
// _matrix-fed._tcp is a target, in priority order; _matrix._tcp is
// looked up only when _matrix-fed._tcp has none.
func TestDiscoveryKeepsEverySRVTarget(t *testing.T) {
	site := &wellKnownSite{hits: map[string]int{}, pages: map[string]wkPage{}}
	srv := map[string][]*net.SRV{
		"_matrix-fed._tcp.multi.example": {
			{Target: "c.example.", Port: 3, Priority: 30},
			{Target: "a.example.", Port: 1, Priority: 10},
			{Target: ".", Port: 0, Priority: 15},
			{Target: "b.example.", Port: 2, Priority: 20},
		},
		"_matrix._tcp.multi.example": {{Target: "legacy.example.", Port: 4}},
		"_matrix._tcp.old.example":   {{Target: "l2.example.", Port: 6, Priority: 2}, {Target: "l1.example.", Port: 5, Priority: 1}},
	}
	r := testResolver(t, site, srv, time.Now)
	ctx := context.Background()
	got, err := r.resolve(ctx, "multi.example")
	want := Target{"a.example:1", "multi.example", "multi.example", []string{"b.example:2", "c.example:3"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("multi.example: %+v, %v; want %+v", got, err, want)
	}
	got, err = r.resolve(ctx, "old.example")
	want = Target{"l1.example:5", "old.example", "old.example", []string{"l2.example:6"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("old.example: %+v, %v; want %+v", got, err, want)
	}
}

// TestDialTriesEverySRVTarget: the first SRV targets refuse connections
// or are not TLS; the request reaches the next target that answers, with
// the server name's certificate.
func TestDialTriesEverySRVTarget(t *testing.T) {
	ca := fedtest.NewCA(t)
	live := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"host":"` + r.Host + `"}`))
	}), "multi.test")
	// Port 0 is never listened on: the connection is refused at once
	// (a closed listener's port could be reused by another process).
	const deadAddr = "127.0.0.1:0"
	// A listener that accepts and closes at once: the handshake fails.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	go func() {
		for {
			conn, err := mute.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	addrs := map[string]string{"dead.test:1": deadAddr, "mute.test:2": mute.Addr().String(), "live.test:3": hostPort(live)}
	var mu sync.Mutex
	var dialled []string
	c, _ := newClient(t, func(f *config.Federation) {
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	c.dialAddr = func(addr string) string {
		mu.Lock()
		dialled = append(dialled, addr)
		mu.Unlock()
		if a, ok := addrs[addr]; ok {
			return a
		}
		return "192.0.2.1:9" // never reached: the test fails on it
	}
	var lookups atomic.Int32
	c.resolver.lookupSRV = func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
		if service != "matrix-fed" || name != "multi.test" {
			return "", nil, errors.New("no such host")
		}
		lookups.Add(1)
		return "", []*net.SRV{
			{Target: "live.test.", Port: 3, Priority: 3},
			{Target: "dead.test.", Port: 1, Priority: 1},
			{Target: "mute.test.", Port: 2, Priority: 2},
		}, nil
	}
	// No well-known document: its fetch fails fast on the made-up name.
	c.resolver.wk["multi.test"] = wellKnownEntry{expires: time.Now().Add(time.Hour)}
	var got map[string]string
	if err := c.Do(context.Background(), "multi.test", "GET", "/x", nil, &got); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got["host"] != "multi.test" {
		t.Errorf("Host header %q, want the server name", got["host"])
	}
	mu.Lock()
	if want := []string{"dead.test:1", "mute.test:2", "live.test:3"}; !reflect.DeepEqual(dialled, want) {
		t.Errorf("dialled %v, want %v", dialled, want)
	}
	mu.Unlock()

	// When none connects, the error names each attempt and the target
	// is discovered again next time.
	delete(addrs, "live.test:3")
	addrs["live.test:3"] = deadAddr
	c.Close()
	err = c.Do(context.Background(), "multi.test", "GET", "/x", nil, nil)
	if err == nil || StatusOf(err) != 0 {
		t.Fatalf("all targets down: %v", err)
	}
	t.Logf("all targets down: %v; dialled %v", err, dialled)
	before := lookups.Load()
	_, _ = c.Resolve(context.Background(), "multi.test")
	if lookups.Load() != before+1 {
		t.Errorf("the failed target was not forgotten (%d lookups, then %d)", before, lookups.Load())
	}
}
