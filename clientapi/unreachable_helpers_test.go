package clientapi_test

import (
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// unreachableServer is a server name that federation resolves to a
// loopback port nobody listens on: tests of "the other server cannot be
// reached" then never leave the machine (no DNS lookup of a made-up name).
const unreachableServer = "elsewhere.test"

// withUnreachableServer points unreachableServer at a closed loopback port.
func withUnreachableServer(t testing.TB) func(*config.Config) {
	t.Helper()
	addr := apptest.FreeAddr(t)
	return func(c *config.Config) {
		if c.Federation.Resolve == nil {
			c.Federation.Resolve = map[string]string{}
		}
		c.Federation.Resolve[unreachableServer] = addr
		c.Federation.AllowPrivateAddresses = true
	}
}
