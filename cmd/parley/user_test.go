package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestMain: the tests start servers on pgtest databases.
func TestMain(m *testing.M) { pgtest.Main(m) }

func login(t *testing.T, s *apptest.Server, user, password string) apptest.Response {
	t.Helper()
	return s.Do(t, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password,
	})
}

func TestUserCommands(t *testing.T) {
	s := apptest.Start(t)
	ctx := context.Background()
	run := func(t *testing.T, stdin string, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := userCommand(ctx, s.Config, args, strings.NewReader(stdin), &out)
		return out.String(), err
	}

	out, err := run(t, "from stdin\n", "add", "-admin", "Alice")
	if err != nil || strings.TrimSpace(out) != "@alice:"+apptest.ServerName {
		t.Fatalf("add = %q, %v", out, err)
	}
	apptest.MustStatus(t, login(t, s, "alice", "from stdin"), http.StatusOK)

	t.Run("adding a taken name fails", func(t *testing.T) {
		_, err := run(t, "", "add", "-password", "x", "alice")
		if !errors.Is(err, mxerr.UserInUse) {
			t.Fatalf("err = %v, want M_USER_IN_USE", err)
		}
	})
	t.Run("list shows the admin", func(t *testing.T) {
		out, err := run(t, "", "list")
		if err != nil || !strings.Contains(out, "@alice:"+apptest.ServerName+"  true") {
			t.Fatalf("list = %q, %v", out, err)
		}
	})
	t.Run("reset-password changes the password", func(t *testing.T) {
		if _, err := run(t, "", "reset-password", "-password", "new pw", "@alice:"+apptest.ServerName); err != nil {
			t.Fatal(err)
		}
		if r := login(t, s, "alice", "from stdin"); r.Status != http.StatusForbidden {
			t.Fatalf("old password: %d %s", r.Status, r.Raw)
		}
		apptest.MustStatus(t, login(t, s, "alice", "new pw"), http.StatusOK)
	})
	t.Run("deactivate stops logins", func(t *testing.T) {
		if _, err := run(t, "", "deactivate", "alice"); err != nil {
			t.Fatal(err)
		}
		if r := login(t, s, "alice", "new pw"); r.Errcode() != "M_USER_DEACTIVATED" {
			t.Fatalf("login after deactivate: %s", r.Raw)
		}
	})
	t.Run("registration tokens", func(t *testing.T) {
		out, err := run(t, "", "token-add", "-uses", "2", "-expires", "1h", "mytoken")
		if err != nil || strings.TrimSpace(out) != "mytoken" {
			t.Fatalf("token-add = %q, %v", out, err)
		}
		out, err = run(t, "", "token-list")
		if err != nil || !strings.Contains(out, "mytoken") || !strings.Contains(out, "2 ") {
			t.Fatalf("token-list = %q, %v", out, err)
		}
	})
	usage := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frobnicate"}},
		{"add without a name", []string{"add", "-password", "x"}},
		{"add without a password", []string{"add", "bob"}},
	}
	for _, c := range usage {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, "", c.args...)
			var u *usageError
			if !errors.As(err, &u) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
}
