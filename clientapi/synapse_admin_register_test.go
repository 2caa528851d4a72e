package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/users"
)

const adminRegister = "/_synapse/admin/v1/register"

func TestSharedSecretDisabled(t *testing.T) {
	s := apptest.Start(t)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		t.Run(m, func(t *testing.T) {
			r := s.Do(t, m, adminRegister, "", obj{})
			if r.Status != 404 || r.Errcode() != "M_UNRECOGNIZED" {
				t.Fatalf("got %d %s, want 404 M_UNRECOGNIZED", r.Status, r.Raw)
			}
		})
	}
}

func TestSharedSecretRegister(t *testing.T) {
	const secret = "s3cret"
	s := apptest.Start(t, func(c *config.Config) {
		c.Registration.SharedSecret = secret
		c.Registration.Mode = config.RegistrationClosed // shared-secret registration works regardless
	})
	nonce := func() string {
		t.Helper()
		r := s.Do(t, http.MethodGet, adminRegister, "", nil)
		apptest.MustStatus(t, r, http.StatusOK)
		if r.String("nonce") == "" {
			t.Fatalf("no nonce: %s", r.Raw)
		}
		return r.String("nonce")
	}
	body := func(n, user string, admin bool, mac string) obj {
		if mac == "" {
			mac = users.SharedSecretMAC(secret, n, user, pw, admin, "")
		}
		return obj{"nonce": n, "username": user, "password": pw, "admin": admin, "mac": mac}
	}

	n := nonce()
	r := s.Do(t, http.MethodPost, adminRegister, "", body(n, "boss", true, ""))
	apptest.MustStatus(t, r, http.StatusOK)
	if r.String("user_id") != "@boss:"+apptest.ServerName || r.String("access_token") == "" {
		t.Fatalf("response %s", r.Raw)
	}
	t.Run("admin flag is stored", func(t *testing.T) {
		conn, err := pgx.Connect(context.Background(), s.Config.Database.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var admin bool
		if err := conn.QueryRow(context.Background(), `SELECT is_admin FROM users WHERE user_id = $1`, r.String("user_id")).Scan(&admin); err != nil || !admin {
			t.Fatalf("is_admin = %v, %v", admin, err)
		}
	})
	t.Run("reused nonce", func(t *testing.T) {
		r := s.Do(t, http.MethodPost, adminRegister, "", body(n, "boss2", true, ""))
		if r.Status != 400 {
			t.Fatalf("got %d %s, want 400", r.Status, r.Raw)
		}
	})
	t.Run("HMAC mismatch", func(t *testing.T) {
		n := nonce()
		wrong := users.SharedSecretMAC("not the secret", n, "eve", pw, false, "")
		r := s.Do(t, http.MethodPost, adminRegister, "", body(n, "eve", false, wrong))
		if r.Status != 403 || r.Errcode() != "M_FORBIDDEN" {
			t.Fatalf("got %d %s, want 403 M_FORBIDDEN", r.Status, r.Raw)
		}
		// The nonce is spent even though the MAC was wrong.
		r = s.Do(t, http.MethodPost, adminRegister, "", body(n, "eve", false, ""))
		if r.Status != 400 {
			t.Fatalf("nonce reuse after a failed MAC: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("admin flag is covered by the MAC", func(t *testing.T) {
		n := nonce()
		b := body(n, "mallory", false, "")
		b["admin"] = true
		r := s.Do(t, http.MethodPost, adminRegister, "", b)
		if r.Status != 403 {
			t.Fatalf("got %d %s, want 403", r.Status, r.Raw)
		}
	})
	t.Run("taken user name", func(t *testing.T) {
		n := nonce()
		r := s.Do(t, http.MethodPost, adminRegister, "", body(n, "boss", false, ""))
		if r.Errcode() != "M_USER_IN_USE" {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
}
