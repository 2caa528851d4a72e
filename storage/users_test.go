package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
	"github.com/parleyhq/parley/users"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var seq atomic.Int64

// newUser creates a fresh account and returns its id.
func newUser(t *testing.T, st *storage.Accounts) id.UserID {
	t.Helper()
	u := id.UserID(fmt.Sprintf("@u%d-%d:test", time.Now().UnixNano(), seq.Add(1)))
	if err := st.CreateAccount(context.Background(), users.Account{UserID: u, PasswordHash: "h", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatalf("create account: %v", err)
	}
	return u
}

func hash(s string) users.TokenHash { return users.HashToken(s) }

func login(t *testing.T, st *storage.Accounts, u id.UserID, dev id.DeviceID, access string, refresh string) {
	t.Helper()
	ns := users.NewSession{UserID: u, DeviceID: dev, AccessHash: hash(access), CreatedAt: time.Now()}
	if refresh != "" {
		rh := hash(refresh)
		ns.RefreshHash = &rh
		ns.ExpiresAt = time.Now().Add(time.Minute)
	}
	if err := st.CreateSession(context.Background(), ns); err != nil {
		t.Fatalf("create session: %v", err)
	}
}

func tokenValid(t *testing.T, st *storage.Accounts, token string) bool {
	t.Helper()
	_, err := st.AccessToken(context.Background(), hash(token))
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	u := newUser(t, st)

	t.Run("duplicate user id is ErrExists", func(t *testing.T) {
		err := st.CreateAccount(ctx, users.Account{UserID: u, CreatedAt: time.Now()}, nil)
		if !errors.Is(err, users.ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
	})
	t.Run("unknown account is ErrNotFound", func(t *testing.T) {
		if _, err := st.Account(ctx, "@nobody-at-all:test"); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("deactivation removes devices and tokens and keeps the id taken", func(t *testing.T) {
		v := newUser(t, st)
		login(t, st, v, "D1", "tok-deact-"+string(v), "")
		if err := st.DeactivateAccount(ctx, v); err != nil {
			t.Fatal(err)
		}
		if tokenValid(t, st, "tok-deact-"+string(v)) {
			t.Fatal("token of a deactivated account still valid")
		}
		devs, err := st.Devices(ctx, v)
		if err != nil || len(devs) != 0 {
			t.Fatalf("devices = %v, %v; want none", devs, err)
		}
		acc, err := st.Account(ctx, v)
		if err != nil || !acc.Deactivated || acc.PasswordHash != "" {
			t.Fatalf("account = %+v, %v; want deactivated without password", acc, err)
		}
		if err := st.CreateAccount(ctx, users.Account{UserID: v, CreatedAt: time.Now()}, nil); !errors.Is(err, users.ErrExists) {
			t.Fatalf("re-create = %v, want ErrExists", err)
		}
	})
}

func TestDeviceReuseReplacesTokens(t *testing.T) {
	st := storage.NewAccounts(pgtest.NewPool(t))
	u := newUser(t, st)
	first, second := "first-"+string(u), "second-"+string(u)
	login(t, st, u, "DEV", first, "")
	login(t, st, u, "DEV", second, "")
	if tokenValid(t, st, first) {
		t.Fatal("the device's old token survived a new login on the same device")
	}
	if !tokenValid(t, st, second) {
		t.Fatal("the new token does not work")
	}
	devs, err := st.Devices(context.Background(), u)
	if err != nil || len(devs) != 1 {
		t.Fatalf("devices = %v, %v; want one", devs, err)
	}
}

func TestRefreshRotation(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	u := newUser(t, st)
	p := string(u)
	login(t, st, u, "DEV", p+"A0", p+"R0")
	now := time.Now()
	exp := now.Add(time.Minute)

	// Rotate R0 twice, as a client that lost the first answer would.
	if _, _, err := st.RotateRefreshToken(ctx, hash(p+"R0"), hash(p+"A1"), hash(p+"R1"), exp, now); err != nil {
		t.Fatal(err)
	}
	if tokenValid(t, st, p+"A0") {
		t.Fatal("access token of the rotated refresh token still valid")
	}
	user, dev, err := st.RotateRefreshToken(ctx, hash(p+"R0"), hash(p+"A2"), hash(p+"R2"), exp, now)
	if err != nil || user != u || dev != "DEV" {
		t.Fatalf("second rotation of R0 = %s %s %v; the old refresh token must stay valid until the new pair is used", user, dev, err)
	}
	info, err := st.AccessToken(ctx, hash(p+"A2"))
	if err != nil || info.Used {
		t.Fatalf("A2 = %+v, %v; want valid and not yet used", info, err)
	}
	// First use of A2 revokes R0 and the abandoned sibling pair A1/R1.
	if err := st.MarkAccessTokenUsed(ctx, hash(p+"A2")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		refresh string
	}{{"old refresh token revoked", "R0"}, {"sibling refresh token revoked", "R1"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := st.RotateRefreshToken(ctx, hash(p+c.refresh), hash(p+c.refresh+"x"), hash(p+c.refresh+"y"), exp, now)
			if !errors.Is(err, users.ErrNotFound) {
				t.Fatalf("rotate %s = %v, want ErrNotFound", c.refresh, err)
			}
		})
	}
	t.Run("sibling access token revoked", func(t *testing.T) {
		if tokenValid(t, st, p+"A1") {
			t.Fatal("A1 still valid")
		}
	})
	t.Run("current pair still works", func(t *testing.T) {
		if !tokenValid(t, st, p+"A2") {
			t.Fatal("A2 revoked")
		}
		if _, _, err := st.RotateRefreshToken(ctx, hash(p+"R2"), hash(p+"A3"), hash(p+"R3"), exp, now); err != nil {
			t.Fatalf("rotate R2: %v", err)
		}
	})
}

func TestRegistrationTokens(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	now := time.Now()
	one := 1
	name := fmt.Sprintf("tok%d", now.UnixNano())
	if err := st.CreateRegistrationToken(ctx, users.RegistrationToken{Token: name, UsesAllowed: &one, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	expired := name + "exp"
	if err := st.CreateRegistrationToken(ctx, users.RegistrationToken{Token: expired, ExpiresAt: now.Add(-time.Second), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	t.Run("duplicate token is ErrExists", func(t *testing.T) {
		if err := st.CreateRegistrationToken(ctx, users.RegistrationToken{Token: name, CreatedAt: now}); !errors.Is(err, users.ErrExists) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("first use reserves", func(t *testing.T) {
		if err := st.ReserveRegistrationToken(ctx, name, now); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("uses_allowed counts pending uses", func(t *testing.T) {
		if err := st.ReserveRegistrationToken(ctx, name, now); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("completion moves pending to completed", func(t *testing.T) {
		if err := st.CompleteRegistrationToken(ctx, name); err != nil {
			t.Fatal(err)
		}
		tok, err := st.RegistrationToken(ctx, name)
		if err != nil || tok.Pending != 0 || tok.Completed != 1 {
			t.Fatalf("token = %+v, %v; want pending 0 completed 1", tok, err)
		}
	})
	t.Run("expired token cannot be reserved", func(t *testing.T) {
		if err := st.ReserveRegistrationToken(ctx, expired, now); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestNoncesAndLoginTokens(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	now := time.Now()
	n := fmt.Sprintf("nonce%d", now.UnixNano())
	if err := st.CreateNonce(ctx, n, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ConsumeNonce(ctx, n, now); !ok || err != nil {
		t.Fatalf("first consume = %v, %v; want true", ok, err)
	}
	if ok, err := st.ConsumeNonce(ctx, n, now); ok || err != nil {
		t.Fatalf("second consume = %v, %v; want false (single use)", ok, err)
	}
	stale := n + "stale"
	if err := st.CreateNonce(ctx, stale, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.ConsumeNonce(ctx, stale, now.Add(2*time.Minute)); ok {
		t.Fatal("expired nonce accepted")
	}

	u := newUser(t, st)
	lt := hash("login-" + string(u))
	if err := st.CreateLoginToken(ctx, lt, u, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ConsumeLoginToken(ctx, lt, now); err != nil || got != u {
		t.Fatalf("consume login token = %s, %v; want %s", got, err, u)
	}
	if _, err := st.ConsumeLoginToken(ctx, lt, now); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("reuse of a login token = %v, want ErrNotFound", err)
	}
}

func TestUIASessionsAndLastSeen(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	now := time.Now()
	sid := fmt.Sprintf("S%d", now.UnixNano())
	if err := st.CreateUIASession(ctx, users.UIASession{ID: sid, Operation: users.OpRegister, Completed: []string{}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteUIAStage(ctx, sid, users.StageRegistrationToken, "abc"); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteUIAStage(ctx, sid, users.StageRegistrationToken, ""); err != nil {
		t.Fatal(err)
	}
	s, err := st.UIASession(ctx, sid, now)
	if err != nil || len(s.Completed) != 1 || s.RegistrationToken != "abc" || s.Operation != users.OpRegister {
		t.Fatalf("session = %+v, %v; want one completed stage, token abc", s, err)
	}
	if _, err := st.UIASession(ctx, sid, now.Add(2*time.Minute)); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("expired session = %v, want ErrNotFound", err)
	}

	u := newUser(t, st)
	login(t, st, u, "DEV", "ls-"+string(u), "")
	at := time.UnixMilli(now.UnixMilli())
	if err := st.UpdateLastSeen(ctx, []users.LastSeen{{UserID: u, DeviceID: "DEV", IP: "10.0.0.1", At: at}}); err != nil {
		t.Fatal(err)
	}
	// An older record must not overwrite a newer one.
	if err := st.UpdateLastSeen(ctx, []users.LastSeen{{UserID: u, DeviceID: "DEV", IP: "10.0.0.2", At: at.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	d, err := st.Device(ctx, u, "DEV")
	if err != nil || d.LastSeenIP != "10.0.0.1" || !d.LastSeenAt.Equal(at) {
		t.Fatalf("device = %+v, %v; want last seen 10.0.0.1 at %v", d, err, at)
	}
	deleted, err := st.DeleteDevicesExcept(ctx, u, "")
	if err != nil || len(deleted) != 1 || deleted[0] != "DEV" {
		t.Fatalf("DeleteDevicesExcept = %v, %v", deleted, err)
	}
}

func TestAbandonedSessionReleasesRegistrationToken(t *testing.T) {
	ctx := context.Background()
	st := storage.NewAccounts(pgtest.NewPool(t))
	now := time.Now()
	one := 1
	tok := fmt.Sprintf("aband%d", now.UnixNano())
	if err := st.CreateRegistrationToken(ctx, users.RegistrationToken{Token: tok, UsesAllowed: &one, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	sid := "S" + tok
	if err := st.CreateUIASession(ctx, users.UIASession{ID: sid, Operation: users.OpRegister, Completed: []string{}, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := st.ReserveRegistrationToken(ctx, tok, now); err != nil {
		t.Fatal(err)
	}
	if err := st.CompleteUIAStage(ctx, sid, users.StageRegistrationToken, tok); err != nil {
		t.Fatal(err)
	}
	if err := st.ReserveRegistrationToken(ctx, tok, now); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("reserve while pending = %v, want ErrNotFound", err)
	}
	// A session created after the first one expired sweeps it.
	later := now.Add(2 * time.Minute)
	if err := st.CreateUIASession(ctx, users.UIASession{ID: sid + "2", Operation: users.OpRegister, Completed: []string{}, CreatedAt: later, ExpiresAt: later.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, err := st.RegistrationToken(ctx, tok)
	if err != nil || got.Pending != 0 {
		t.Fatalf("token = %+v, %v; want the abandoned pending use released", got, err)
	}
	if err := st.ReserveRegistrationToken(ctx, tok, later); err != nil {
		t.Fatalf("reserve after release = %v", err)
	}
}
