package clientapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestMain is the clientapi test binary's only one: the end-to-end tests
// start servers on pgtest databases, which pgtest.Main cleans up.
func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	v3 = "/_matrix/client/v3"
	pw = "correct horse battery"
)

type obj = map[string]any

// loginPassword logs in with the password login type and a localpart.
func loginPassword(t *testing.T, s *apptest.Server, user, password string, extra obj) apptest.Response {
	t.Helper()
	body := obj{
		"type":       "m.login.password",
		"identifier": obj{"type": "m.id.user", "user": user},
		"password":   password,
	}
	for k, v := range extra {
		body[k] = v
	}
	return s.Do(t, http.MethodPost, v3+"/login", "", body)
}

// mustLogin logs in and returns the access token and device id.
func mustLogin(t *testing.T, s *apptest.Server, user, password string, extra obj) (token, device string) {
	t.Helper()
	res := loginPassword(t, s, user, password, extra)
	apptest.MustStatus(t, res, http.StatusOK)
	return res.String("access_token"), res.String("device_id")
}

// passwordAuth is the auth dict of an m.login.password stage.
func passwordAuth(session, user, password string) obj {
	return obj{
		"type":       "m.login.password",
		"session":    session,
		"identifier": obj{"type": "m.id.user", "user": user},
		"password":   password,
	}
}

// withUIA sends body without auth, checks the 401 offers stage, and sends
// it again with auth(session). It returns the final response.
func withUIA(t *testing.T, s *apptest.Server, method, path, token string, body obj, stage string, auth func(session string) obj) apptest.Response {
	t.Helper()
	first := s.Do(t, method, path, token, body)
	apptest.MustStatus(t, first, http.StatusUnauthorized)
	if !offers(first, stage) {
		t.Fatalf("401 does not offer %s: %s", stage, first.Raw)
	}
	session := first.String("session")
	if session == "" {
		t.Fatalf("401 has no session: %s", first.Raw)
	}
	body["auth"] = auth(session)
	return s.Do(t, method, path, token, body)
}

// offers reports whether a UIA 401 body has a flow whose first stage is stage.
func offers(res apptest.Response, stage string) bool {
	flows, _ := res.Body["flows"].([]any)
	for _, f := range flows {
		stages, _ := f.(map[string]any)["stages"].([]any)
		if len(stages) > 0 && stages[0] == stage {
			return true
		}
	}
	return false
}

// exec runs SQL on the server's database, for the few states a test cannot
// reach through the API in reasonable time (an expired access token).
func exec(t *testing.T, s *apptest.Server, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.Config.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}
