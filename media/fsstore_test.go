package media_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/media"
	"github.com/parleyhq/parley/media/blobstoretest"
)

func TestFSStore(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) media.BlobStore {
		dir := t.TempDir()
		s, err := media.NewFSStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Nothing may stay behind in tmp: failed puts clean up.
			left, _ := os.ReadDir(filepath.Join(dir, "tmp"))
			if len(left) != 0 {
				t.Errorf("%d temporary files left behind", len(left))
			}
		})
		return s
	})
}
