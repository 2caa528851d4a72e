package federation_test

import (
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

// TestMain gives the package's tests their Postgres databases and drops
// them afterwards.
func TestMain(m *testing.M) { pgtest.Main(m) }
