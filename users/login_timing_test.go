package users

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
)

// oneAccount is an AccountStore holding a single account; only the lookup
// that login needs is implemented.
type oneAccount struct {
	AccountStore
	acc Account
}

func (o oneAccount) Account(_ context.Context, user id.UserID) (Account, error) {
	if user == o.acc.UserID {
		return o.acc, nil
	}
	return Account{}, ErrNotFound
}

// TestUnknownUserCostsAPasswordCheck: a login for an unknown user must run
// argon2id like a login with a wrong password, or response times reveal
// which accounts exist.
func TestUnknownUserCostsAPasswordCheck(t *testing.T) {
	hash, err := HashPassword("right", DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	st := Stores{Accounts: oneAccount{acc: Account{UserID: "@alice:x", PasswordHash: hash}}}
	s, err := New(Config{ServerName: "x"}, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	// The fastest of several interleaved runs, so that load from other
	// tests does not decide; without the dummy hash an unknown user costs
	// microseconds against tens of milliseconds, far outside the factor 4.
	check := func(user id.UserID) time.Duration {
		start := time.Now()
		_, err := s.checkPassword(context.Background(), user, "wrong")
		if !errors.Is(err, mxerr.Forbidden) {
			t.Fatalf("checkPassword(%s) = %v, want M_FORBIDDEN", user, err)
		}
		return time.Since(start)
	}
	wrong, unknown := time.Hour, time.Hour
	for i := 0; i < 5; i++ {
		wrong = min(wrong, check("@alice:x"))
		unknown = min(unknown, check("@nobody:x"))
	}
	if unknown < wrong/4 || wrong < unknown/4 {
		t.Fatalf("wrong password took %v, unknown user %v: not comparable", wrong, unknown)
	}
}
