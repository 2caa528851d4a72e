// Package fedmisbehave holds multi-server tests of a remote server that
// speaks the federation API wrongly on purpose (issue #7, "A misbehaving
// remote"): a real Parley server signs with its real key over real TLS,
// but the PDUs it sends are forged, tampered with, not allowed, or too
// many; none of it may reach a client.
package fedmisbehave

import (
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
