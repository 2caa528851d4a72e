package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries (initdb and
// postgres) can be found on this machine.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` (Debian's package) or run scripts/ensure-postgres.sh")

// debianRoot is where Debian's postgresql-NN packages put their binaries, one
// directory per major version; initdb and postgres are not on PATH there.
const debianRoot = "/usr/lib/postgresql"

// Binaries are the two PostgreSQL programs a cluster needs, from one
// installation.
type Binaries struct {
	Initdb   string
	Postgres string
	Major    int // the major version, e.g. 15
}

// FindBinaries locates initdb and postgres: on PATH first, else the highest
// version under /usr/lib/postgresql/*/bin. When want > 0 (the version of an
// existing cluster directory) an installation of exactly that major version
// is required, because a data directory only opens with its own major version.
func FindBinaries(want int) (Binaries, error) {
	var candidates []Binaries
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if postgres, err := exec.LookPath("postgres"); err == nil {
			if b, err := describe(initdb, postgres); err == nil {
				candidates = append(candidates, b)
			}
		}
	}
	candidates = append(candidates, debianInstallations()...)
	if len(candidates) == 0 {
		return Binaries{}, ErrNoBinaries
	}
	if want <= 0 {
		return candidates[0], nil
	}
	for _, b := range candidates {
		if b.Major == want {
			return b, nil
		}
	}
	return Binaries{}, fmt.Errorf("the cluster directory needs PostgreSQL %d but only version %d is installed; install it with `apt-get install postgresql-%d`: %w",
		want, candidates[0].Major, want, ErrNoBinaries)
}

// debianInstallations lists /usr/lib/postgresql/*/bin, highest version first.
func debianInstallations() []Binaries {
	entries, err := os.ReadDir(debianRoot)
	if err != nil {
		return nil
	}
	var found []Binaries
	for _, e := range entries {
		bin := filepath.Join(debianRoot, e.Name(), "bin")
		b, err := describe(filepath.Join(bin, "initdb"), filepath.Join(bin, "postgres"))
		if err == nil {
			found = append(found, b)
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Major > found[j].Major })
	return found
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// describe checks both programs exist and asks postgres for its version.
func describe(initdb, postgres string) (Binaries, error) {
	for _, p := range []string{initdb, postgres} {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return Binaries{}, fmt.Errorf("%s is not an executable", p)
		}
	}
	out, err := exec.Command(postgres, "--version").Output()
	if err != nil {
		return Binaries{}, fmt.Errorf("%s --version: %w", postgres, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return Binaries{}, fmt.Errorf("%s --version: unexpected output %q", postgres, out)
	}
	major, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return Binaries{}, fmt.Errorf("%s --version: %w", postgres, err)
	}
	return Binaries{Initdb: initdb, Postgres: postgres, Major: major}, nil
}
