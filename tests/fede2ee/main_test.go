// Package fede2ee holds multi-server tests of the server side of
// end-to-end encryption (issue #8): keys queried and claimed across
// servers, to-device messages and device list changes carried by EDUs,
// between real Parley servers over real TLS.
package fede2ee

import (
	"testing"

	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
