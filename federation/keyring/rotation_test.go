package keyring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/rooms/signing"
)

// rotatingServer is hs1 of the in-memory network with a live signing key
// that rotate replaces, as app/keyrotation.go does on `parley keys rotate`.
func rotatingServer(t *testing.T, n *network, c *clock) (*Keyring, func() string) {
	t.Helper()
	first, err := signing.Generate("ed25519:k1")
	if err != nil {
		t.Fatal(err)
	}
	live := signing.NewLive(first)
	hs1 := New(Config{ServerName: "hs1", Key: live.Key(), ValidityPeriod: time.Hour, Now: c.Now},
		&memStore{}, n, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.servers["hs1"] = hs1
	generation := 1
	rotate := func() string {
		generation++
		next, err := signing.Generate(fmt.Sprintf("ed25519:k%d", generation))
		if err != nil {
			t.Fatal(err)
		}
		cur := live.Key().Current()
		hs1.SetOldKeys(append(hs1.OldKeys(), OldKey{KeyID: cur.ID(), Key: cur.Public(), ExpiredTS: c.now.UnixMilli()}))
		live.Set(next)
		return next.ID()
	}
	return hs1, rotate
}

// TestARotatedKeyIsFetchedAtOnce: hs2 fetched hs1's keys a moment ago;
// hs1 rotates its key; the first request or event hs1 signs with the new
// key verifies on hs2 at once — not refetchInterval later — and so after
// a second rotation.
func TestARotatedKeyIsFetchedAtOnce(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	n := newNet()
	hs1, rotate := rotatingServer(t, n, c)
	hs2 := n.add(t, "hs2", c, nil)
	if _, err := hs2.VerifyKey(ctx, "hs1", hs1.SigningKey().ID(), c.now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c.now = c.now.Add(100 * time.Millisecond)
		newID := rotate()
		calls := n.calls["hs1"]
		pub, err := hs2.VerifyKey(ctx, "hs1", newID, c.now.UnixMilli())
		if err != nil || !pub.Equal(hs1.SigningKey().Public()) {
			t.Fatalf("the new key %s right after the rotation: %v", newID, err)
		}
		if n.calls["hs1"] != calls+1 {
			t.Fatalf("hs1 asked %d times for its new key, want once", n.calls["hs1"]-calls)
		}
	}
}

// TestMadeUpKeyIDsAreFetchedAtMostOncePerFloor: a burst of requests naming
// key ids hs1 never had (forged requests claiming to be from hs1) costs hs1
// one key fetch per unknownKeyFloor, however many ids a burst names; the
// same id is not fetched again within refetchInterval; and while hs1 does
// not answer, one per refetchInterval.
func TestMadeUpKeyIDsAreFetchedAtMostOncePerFloor(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.UnixMilli(1_700_000_000_000)}
	n := newNet()
	hs1, _ := rotatingServer(t, n, c)
	hs2 := n.add(t, "hs2", c, nil)
	if _, err := hs2.VerifyKey(ctx, "hs1", hs1.SigningKey().ID(), c.now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	junk := 0
	burst := func(ids int) {
		for range ids {
			junk++
			if _, err := hs2.VerifyKey(ctx, "hs1", fmt.Sprintf("ed25519:junk%d", junk), c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) {
				t.Fatalf("made-up key id: %v", err)
			}
		}
	}
	// Ten seconds of 100 made-up ids every 100 ms.
	calls := n.calls["hs1"]
	for range 100 {
		burst(100)
		c.now = c.now.Add(100 * time.Millisecond)
	}
	if got, most := n.calls["hs1"]-calls, int(10*time.Second/unknownKeyFloor); got > most || got == 0 {
		t.Fatalf("10,000 made-up key ids over 10 s: %d fetches, want 1 to %d", got, most)
	}
	// The same made-up id again, past the floor: not within refetchInterval.
	c.now = c.now.Add(2 * unknownKeyFloor)
	calls = n.calls["hs1"]
	if _, err := hs2.VerifyKey(ctx, "hs1", "ed25519:junk1", c.now.UnixMilli()); !errors.Is(err, ErrKeyNotFound) || n.calls["hs1"] != calls {
		t.Fatalf("a made-up id asked again: %v, %d fetches", err, n.calls["hs1"]-calls)
	}
	// hs1 down: one fetch, then none for refetchInterval.
	n.down["hs1"] = true
	calls = n.calls["hs1"]
	for range 100 {
		burst(10)
		c.now = c.now.Add(100 * time.Millisecond)
	}
	if got := n.calls["hs1"] - calls; got != 1 {
		t.Fatalf("made-up key ids of a server that does not answer, over 10 s: %d fetches, want 1", got)
	}
	// Once it answers again, and refetchInterval has passed, a rotated
	// key is fetched at once again.
	n.down["hs1"] = false
	c.now = c.now.Add(refetchInterval)
	if _, err := hs2.VerifyKey(ctx, "hs1", hs1.SigningKey().ID(), c.now.UnixMilli()); err != nil {
		t.Fatalf("hs1's key after the outage: %v", err)
	}
}
