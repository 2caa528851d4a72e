package signing

import (
	"crypto/ed25519"
	"testing"
)

// TestLiveKeyFollowsRotation: a Live's key names and signs with the key
// set last; a Current snapshot keeps its key across a rotation.
func TestLiveKeyFollowsRotation(t *testing.T) {
	first, _ := Generate("ed25519:first")
	second, _ := Generate("ed25519:second")
	live := NewLive(first)
	k := live.Key()
	if k.Live() != live || first.Live() != nil {
		t.Fatal("Live() does not find the Live")
	}
	snap := k.Current()
	if k.ID() != "ed25519:first" || !ed25519.Verify(first.Public(), []byte("m"), k.Sign([]byte("m"))) {
		t.Fatal("the live key is not the first key")
	}
	live.Set(second)
	if k.ID() != "ed25519:second" || k.PublicBase64() != second.PublicBase64() || k.Seed() != second.Seed() ||
		!ed25519.Verify(second.Public(), []byte("m"), k.Sign([]byte("m"))) {
		t.Fatal("the live key did not follow the rotation")
	}
	if snap.ID() != "ed25519:first" || !ed25519.Verify(first.Public(), []byte("m"), snap.Sign([]byte("m"))) {
		t.Fatal("a snapshot taken before the rotation changed")
	}
	// Setting a live key stores what it stands for, not a loop.
	live.Set(k)
	if k.ID() != "ed25519:second" {
		t.Fatalf("after setting the live key to itself: %s", k.ID())
	}
}
