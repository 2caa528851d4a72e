package storage_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/sso"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
	"github.com/parleyhq/parley/users"
)

func TestSSOStore(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	accounts, st := storage.NewAccounts(pool), storage.NewSSO(pool)
	alice, bob := newUser(t, accounts), newUser(t, accounts)
	now := time.Now()

	t.Run("a flow is consumed once", func(t *testing.T) {
		f := sso.Flow{StateHash: sha256.Sum256([]byte("s1")), Provider: "kc", Nonce: "n", CodeVerifier: "v",
			RedirectURL: "https://client/", ExpiresAt: now.Add(time.Minute)}
		if err := st.CreateFlow(ctx, f); err != nil {
			t.Fatal(err)
		}
		got, err := st.ConsumeFlow(ctx, f.StateHash, now)
		if err != nil || got.Provider != "kc" || got.Nonce != "n" || got.CodeVerifier != "v" || got.RedirectURL != "https://client/" {
			t.Fatalf("flow %+v, %v", got, err)
		}
		if _, err := st.ConsumeFlow(ctx, f.StateHash, now); !errors.Is(err, sso.ErrNotFound) {
			t.Fatalf("second consume: %v", err)
		}
	})
	t.Run("an expired flow is not found", func(t *testing.T) {
		f := sso.Flow{StateHash: sha256.Sum256([]byte("s2")), Provider: "kc", UIASession: "sess", ExpiresAt: now.Add(time.Minute)}
		if err := st.CreateFlow(ctx, f); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ConsumeFlow(ctx, f.StateHash, now.Add(2*time.Minute)); !errors.Is(err, sso.ErrNotFound) {
			t.Fatalf("expired flow: %v", err)
		}
	})
	t.Run("an account created with its link, or not at all", func(t *testing.T) {
		fresh := id.UserID(fmt.Sprintf("@sso%d:test", time.Now().UnixNano()))
		acc := users.Account{UserID: fresh, DisplayName: "Fresh", CreatedAt: now}
		if err := st.CreateLinkedAccount(ctx, acc, "kc", "sub-fresh"); err != nil {
			t.Fatal(err)
		}
		if got, err := st.ExternalUser(ctx, "kc", "sub-fresh"); err != nil || got != fresh {
			t.Fatalf("link %s, %v", got, err)
		}
		if err := st.CreateLinkedAccount(ctx, acc, "kc", "sub-other"); !errors.Is(err, users.ErrExists) {
			t.Fatalf("taken user id: %v", err)
		}
		// The identity is linked already: the second account is rolled back.
		late := id.UserID(fmt.Sprintf("@late%d:test", time.Now().UnixNano()))
		if err := st.CreateLinkedAccount(ctx, users.Account{UserID: late, CreatedAt: now}, "kc", "sub-fresh"); !errors.Is(err, sso.ErrExists) {
			t.Fatalf("linked identity: %v", err)
		}
		if _, err := accounts.Account(ctx, late); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("the losing account was left behind: %v", err)
		}
	})
	t.Run("an identity links to one account", func(t *testing.T) {
		if _, err := st.ExternalUser(ctx, "kc", "sub-1"); !errors.Is(err, sso.ErrNotFound) {
			t.Fatalf("unlinked: %v", err)
		}
		if err := st.LinkExternalID(ctx, "kc", "sub-1", alice, now); err != nil {
			t.Fatal(err)
		}
		if err := st.LinkExternalID(ctx, "kc", "sub-1", bob, now); !errors.Is(err, sso.ErrExists) {
			t.Fatalf("second link: %v", err)
		}
		// The same subject at another provider is another identity.
		if err := st.LinkExternalID(ctx, "google", "sub-1", bob, now); err != nil {
			t.Fatal(err)
		}
		if got, err := st.LinkedProviders(ctx, bob); err != nil || len(got) != 1 || got[0] != "google" {
			t.Fatalf("bob's providers %v, %v", got, err)
		}
		for prov, want := range map[string]any{"kc": alice, "google": bob} {
			if got, err := st.ExternalUser(ctx, prov, "sub-1"); err != nil || got != want {
				t.Fatalf("%s: %s, %v", prov, got, err)
			}
		}
	})
}
