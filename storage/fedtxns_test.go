package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestInboundTxnsRememberTheFirstAnswer(t *testing.T) {
	ctx := context.Background()
	s := storage.NewInboundTxns(pgtest.NewPool(t))
	origin := id.ServerName("txn.test")
	if _, ok, err := s.InboundTxn(ctx, origin, "t1"); err != nil || ok {
		t.Fatalf("a new transaction is known: %v, %v", ok, err)
	}
	if err := s.SaveInboundTxn(ctx, origin, "t1", []byte(`{"pdus":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveInboundTxn(ctx, origin, "t1", []byte(`{"pdus":{"$x":{}}}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		origin id.ServerName
		txn    string
		want   string
		ok     bool
	}{
		{origin, "t1", `{"pdus":{}}`, true},
		{origin, "t2", "", false},
		{"other.test", "t1", "", false}, // transaction ids are per origin
	}
	for _, tt := range tests {
		got, ok, err := s.InboundTxn(ctx, tt.origin, tt.txn)
		if err != nil || ok != tt.ok || string(got) != tt.want {
			t.Errorf("InboundTxn(%s, %s) = %s, %v, %v; want %s, %v", tt.origin, tt.txn, got, ok, err, tt.want, tt.ok)
		}
	}
	n, err := s.PruneInboundTxns(ctx, -time.Minute) // everything is older than a minute from now
	if err != nil || n < 1 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	if _, ok, _ := s.InboundTxn(ctx, origin, "t1"); ok {
		t.Fatal("a pruned transaction is still known")
	}
}
