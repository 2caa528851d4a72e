// Package fedconflicts holds multi-server tests of concurrent state changes
// (issue #7, "Conflicts"): real Parley servers on loopback, each with its
// own database, federating over real TLS; forks of the room graph must
// resolve to the same state on every server.
package fedconflicts

import (
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
