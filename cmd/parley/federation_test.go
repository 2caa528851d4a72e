package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestFederationCheck(t *testing.T) {
	servers := apptest.StartFederation(t, 2)
	hs1, hs2 := servers[0], servers[1]
	var out bytes.Buffer
	if err := runFederation(context.Background(), hs1.Config, []string{"check", "hs2.test"}, &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"target      " + hs2.Config.Listen.Federation + " (Host: hs2.test, certificate for hs2.test)",
		"software    Parley",
		"key         " + hs2.App.SigningKey().ID() + " " + hs2.App.SigningKey().PublicBase64(),
		"ok",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Without the test CA the certificate is refused, and said so.
	cfg := *hs1.Config
	cfg.Federation.CAFile = ""
	err := runFederation(context.Background(), &cfg, []string{"check", "hs2.test"}, &out)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("check without the CA: %v", err)
	}
	if err := runFederation(context.Background(), &cfg, []string{"check"}, &out); err == nil {
		t.Error("check without a server accepted")
	}
}
