package keyring_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/signing"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServerKeyStore runs storage.ServerKeys against Postgres (here, beside
// the interface it implements).
func TestServerKeyStore(t *testing.T) {
	ctx := context.Background()
	st := storage.NewServerKeys(pgtest.NewPool(t))
	server := id.ServerName(fmt.Sprintf("keys%d.test", time.Now().UnixNano()))
	k1, _ := signing.Generate("ed25519:a")
	k2, _ := signing.Generate("ed25519:b")
	first := []keyring.StoredKey{
		{Server: server, KeyID: "ed25519:a", Key: k1.Public(), ValidUntilTS: 2000, FetchedTS: 1000, Response: []byte(`{"v":1}`)},
	}
	if err := st.StoreServerKeys(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A later response moves a to old_verify_keys and adds b.
	second := []keyring.StoredKey{
		{Server: server, KeyID: "ed25519:b", Key: k2.Public(), ValidUntilTS: 5000, FetchedTS: 3000, Response: []byte(`{"v":2}`)},
		{Server: server, KeyID: "ed25519:a", Key: k1.Public(), ValidUntilTS: 5000, ExpiredTS: 2500, FetchedTS: 3000, Response: []byte(`{"v":2}`)},
	}
	if err := st.StoreServerKeys(ctx, second); err != nil {
		t.Fatal(err)
	}
	// An older answer arriving late does not overwrite the newer one.
	if err := st.StoreServerKeys(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := st.ServerKeys(ctx, server)
	if err != nil || len(got) != 2 {
		t.Fatalf("ServerKeys = %+v, %v", got, err)
	}
	a, b := got[0], got[1]
	if a.KeyID != "ed25519:a" || a.ExpiredTS != 2500 || a.FetchedTS != 3000 || string(a.Response) != `{"v":2}` || !a.Key.Equal(k1.Public()) {
		t.Errorf("key a = %+v", a)
	}
	if b.KeyID != "ed25519:b" || b.ValidUntilTS != 5000 || b.ExpiredTS != 0 || !b.Key.Equal(k2.Public()) {
		t.Errorf("key b = %+v", b)
	}
	if none, err := st.ServerKeys(ctx, "nobody.test"); err != nil || len(none) != 0 {
		t.Errorf("unknown server: %v, %v", none, err)
	}
}
