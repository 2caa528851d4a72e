package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/profiles"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
	"github.com/parleyhq/parley/users"
)

func TestProfileStore(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewProfiles(pool)
	named := id.UserID(fmt.Sprintf("@named%d:test", time.Now().UnixNano()))
	if err := accounts.CreateAccount(ctx, users.Account{UserID: named, DisplayName: "named", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	bare := newUser(t, accounts) // created without a display name: no profile row

	t.Run("a new account's display name is stored with it", func(t *testing.T) {
		p, err := st.Profile(ctx, named)
		if err != nil || p.String(profiles.KeyDisplayName) != "named" {
			t.Fatalf("profile %v, %v", p, err)
		}
	})
	t.Run("an account without a row has an empty profile", func(t *testing.T) {
		p, err := st.Profile(ctx, bare)
		if err != nil || len(p) != 0 {
			t.Fatalf("profile %v, %v", p, err)
		}
	})
	t.Run("an unknown user", func(t *testing.T) {
		_, err := st.Profile(ctx, "@nobody:test")
		err2 := st.UpdateProfile(ctx, "@nobody:test", func(p profiles.Profile) (profiles.Profile, error) { return p, nil })
		if !errors.Is(err, profiles.ErrUnknownUser) || !errors.Is(err2, profiles.ErrUnknownUser) {
			t.Fatalf("read %v, update %v", err, err2)
		}
	})
	t.Run("the update's own error rolls back", func(t *testing.T) {
		boom := errors.New("boom")
		err := st.UpdateProfile(ctx, named, func(p profiles.Profile) (profiles.Profile, error) {
			p["com.example.x"] = json.RawMessage(`1`)
			return p, boom
		})
		p, _ := st.Profile(ctx, named)
		if !errors.Is(err, boom) || p["com.example.x"] != nil {
			t.Fatalf("err %v, profile %v", err, p)
		}
	})
	t.Run("concurrent updates of different fields all survive", func(t *testing.T) {
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				errs <- st.UpdateProfile(ctx, bare, func(p profiles.Profile) (profiles.Profile, error) {
					p[fmt.Sprintf("com.example.f%d", i)] = json.RawMessage(fmt.Sprint(i))
					return p, nil
				})
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		p, err := st.Profile(ctx, bare)
		if err != nil || len(p) != n {
			t.Fatalf("%d fields, want %d: %v %v", len(p), n, p, err)
		}
	})
}
