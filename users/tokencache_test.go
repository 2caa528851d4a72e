package users

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
)

func TestTokenCache(t *testing.T) {
	now := time.Unix(1000, 0)
	hash := func(s string) TokenHash { return HashToken(s) }
	info := func(u, d string) AccessTokenInfo {
		return AccessTokenInfo{UserID: id.UserID(u), DeviceID: id.DeviceID(d)}
	}

	t.Run("hit then expiry after TTL", func(t *testing.T) {
		c := newTokenCache(10, time.Minute)
		c.put(hash("a"), info("@a:x", "D1"), now)
		if got, ok := c.get(hash("a"), now.Add(30*time.Second)); !ok || got.DeviceID != "D1" {
			t.Fatalf("get = %v, %v; want D1 hit", got, ok)
		}
		if _, ok := c.get(hash("a"), now.Add(2*time.Minute)); ok {
			t.Fatal("entry served after its TTL")
		}
	})
	t.Run("invalidate by device keeps other devices", func(t *testing.T) {
		c := newTokenCache(10, time.Minute)
		c.put(hash("a"), info("@a:x", "D1"), now)
		c.put(hash("b"), info("@a:x", "D2"), now)
		c.invalidate("@a:x", "D1")
		if _, ok := c.get(hash("a"), now); ok {
			t.Fatal("invalidated device still cached")
		}
		if _, ok := c.get(hash("b"), now); !ok {
			t.Fatal("other device dropped")
		}
		c.invalidate("@a:x")
		if c.len() != 0 {
			t.Fatalf("len = %d after invalidating the user, want 0", c.len())
		}
	})
	t.Run("size is bounded", func(t *testing.T) {
		c := newTokenCache(3, time.Minute)
		for _, s := range []string{"1", "2", "3", "4", "5"} {
			c.put(hash(s), info("@u"+s+":x", "D"), now)
		}
		if c.len() != 3 {
			t.Fatalf("len = %d, want the bound 3", c.len())
		}
	})
}
