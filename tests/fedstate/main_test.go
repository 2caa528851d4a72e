// Package fedstate holds multi-server tests of what clients see after the
// room graph forks (issue #7): real Parley servers on loopback federating
// over real TLS; after concurrent state changes resolve, a client's /sync
// (with and without use_state_after) ends with the state GET /state shows
// on every server, and history visibility follows the state at each event.
package fedstate

import (
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
