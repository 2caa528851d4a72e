package pgcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnsurePostgresScript runs scripts/ensure-postgres.sh against fake
// installations: PATH without the server binaries, and a fake
// /usr/lib/postgresql. The install branch runs in dry-run mode only.
func TestEnsurePostgresScript(t *testing.T) {
	script, err := filepath.Abs("../../scripts/ensure-postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with the tools the script needs but no initdb/postgres.
	bin := t.TempDir()
	for _, tool := range []string{"sh", "ls", "sort", "id", "awk", "cat", "printf", "tee", "chmod", "rm", "apt-get"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue // apt-get may be absent; the script then says so
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	fakeInstall := func(t *testing.T, versions ...string) string {
		t.Helper()
		lib := t.TempDir()
		for _, v := range versions {
			dir := filepath.Join(lib, v, "bin")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, prog := range []string{"initdb", "postgres"} {
				if err := os.WriteFile(filepath.Join(dir, prog), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		return lib
	}
	for _, tc := range []struct {
		name     string
		versions []string
		want     string
	}{
		{"picks the highest installed version", []string{"9", "15", "13"}, "/15/bin/postgres"},
		{"installs when nothing is there", nil, "would run: apt-get install -y --no-install-recommends postgresql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lib := fakeInstall(t, tc.versions...)
			cmd := exec.Command(filepath.Join(bin, "sh"), script)
			cmd.Env = []string{"PATH=" + bin, "ENSURE_POSTGRES_LIBDIR=" + lib, "ENSURE_POSTGRES_DRY_RUN=1"}
			out, err := cmd.CombinedOutput()
			if _, lookErr := exec.LookPath("apt-get"); lookErr != nil && tc.versions == nil {
				if err == nil || !strings.Contains(string(out), "no apt-get") {
					t.Fatalf("without apt-get: err %v, output %s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not contain %q", out, tc.want)
			}
		})
	}
}
