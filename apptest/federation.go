package apptest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/id"
)

// StartFederation runs n servers named hs1.test … hsN.test that federate
// over real TLS on loopback: each has a database of its own and a
// certificate for its name signed by one test CA, trusts that CA
// (federation.ca_file), may reach private addresses, and resolves every
// server's name to its federation port through federation.resolve, so
// the map is complete before any server starts. mutate applies to every
// server's configuration after those settings (cfg.ServerName tells them
// apart). The servers stop when the test ends.
func StartFederation(t testing.TB, n int, mutate ...func(*config.Config)) []*Server {
	t.Helper()
	ca := fedtest.NewCA(t)
	caFile := ca.WriteCA(t)
	names := make([]string, n)
	resolve := make(map[string]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("hs%d.test", i+1)
		resolve[names[i]] = FreeAddr(t)
	}
	servers := make([]*Server, n)
	for i, name := range names {
		certFile, keyFile := ca.WriteCertificate(t, name)
		federated := func(cfg *config.Config) {
			cfg.ServerName = id.ServerName(name)
			cfg.Listen.Federation = resolve[name]
			cfg.TLS.Cert, cfg.TLS.Key = certFile, keyFile
			cfg.Federation.Resolve = maps.Clone(resolve)
			cfg.Federation.CAFile = caFile
			cfg.Federation.AllowPrivateAddresses = true
		}
		servers[i] = Start(t, append([]func(*config.Config){federated}, mutate...)...)
		servers[i].CA = ca
	}
	return servers
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a listener whose address others must know before it starts.
// The port is drawn below the kernel's ephemeral range (32768–60999 on
// Linux), where listeners on port 0 — every other test's — never land,
// so that nothing takes it between now and the server's start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		port := reservedPortLow + rand.IntN(reservedPortHigh-reservedPortLow)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken: another test's server
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatalf("apptest: %v", err)
		}
		return addr
	}
	t.Fatal("apptest: no free port found")
	return ""
}

// The range FreeAddr draws from.
const (
	reservedPortLow  = 20000
	reservedPortHigh = 32000
)
