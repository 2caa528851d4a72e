package users

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(RateLimit{Rate: 0.5, Burst: 3})
	l.now = func() time.Time { return now }

	t.Run("burst is allowed then refused with a wait", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if ok, _ := l.Allow("a"); !ok {
				t.Fatalf("request %d refused within the burst", i)
			}
		}
		ok, wait := l.Allow("a")
		if ok {
			t.Fatal("request beyond the burst allowed")
		}
		if wait <= 0 || wait > 2*time.Second {
			t.Fatalf("wait = %v, want within (0, 2s] at 0.5/s", wait)
		}
	})
	t.Run("keys are independent", func(t *testing.T) {
		if ok, _ := l.Allow("b"); !ok {
			t.Fatal("other key refused")
		}
	})
	t.Run("bucket refills with time", func(t *testing.T) {
		now = now.Add(2 * time.Second)
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("refused after refill time")
		}
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("allowed twice after one token's refill")
		}
	})
}
