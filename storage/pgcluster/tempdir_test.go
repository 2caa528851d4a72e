package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestTempDirSweepsAbandonedDirectories(t *testing.T) {
	pattern := fmt.Sprintf("pgcluster-sweep-test-%d-*", os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(owner string) string {
		t.Helper()
		dir, err := os.MkdirTemp("", pattern)
		if err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	abandoned := mk(strconv.Itoa(dead.Process.Pid))
	live := mk(strconv.Itoa(os.Getpid()))
	unowned := mk("")

	fresh, err := TempDir(pattern)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		kept bool
	}{
		{"dead owner removed", abandoned, false},
		{"live owner kept", live, true},
		{"no owner file kept", unowned, true},
		{"new directory exists", fresh, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := os.Stat(tc.dir)
			if kept := err == nil; kept != tc.kept {
				t.Errorf("%s exists = %v, want %v", tc.dir, kept, tc.kept)
			}
		})
	}
	if data, err := os.ReadFile(filepath.Join(fresh, ownerFile)); err != nil || string(data) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("owner file of the new directory: %q, %v", data, err)
	}
}
