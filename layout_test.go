// Package parley_test holds the repository-wide checks of the layout in
// ../shared/DESIGN.md.
package parley_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/parleyhq/parley"

// edges are the packages that may import drivers and each other: the API
// edges, storage, and the wiring. Everything else in the module is a domain
// package (rooms, users, media, id, config, …).
var edges = []string{"clientapi", "federation", "storage", "app", "apptest", "cmd", "tests"}

// drivers are the third-party modules only edges may use.
var drivers = []string{
	"github.com/jackc/pgx",
	"github.com/minio/minio-go",
	"github.com/go-chi/chi",
	"github.com/coder/websocket",
	"github.com/nats-io",
}

type listedPackage struct {
	ImportPath string
	Deps       []string
}

func isEdge(pkg string) bool {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	for _, e := range edges {
		if rel == e || strings.HasPrefix(rel, e+"/") {
			return true
		}
	}
	return false
}

// TestDomainPackagesImportNoEdgeStorageOrDriver fails when a domain package
// depends, directly or through another package, on an edge, on storage or on
// a driver: the dependency direction of DESIGN.md.
func TestDomainPackagesImportNoEdgeStorageOrDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if isEdge(p.ImportPath) || p.ImportPath == module {
			continue
		}
		checked++
		for _, dep := range p.Deps {
			if strings.HasPrefix(dep, module+"/") && isEdge(dep) {
				t.Errorf("domain package %s depends on %s", p.ImportPath, dep)
			}
			for _, d := range drivers {
				if strings.HasPrefix(dep, d) {
					t.Errorf("domain package %s depends on driver %s", p.ImportPath, dep)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no domain package found: the check would pass vacuously")
	}
}

// TestEdgeDetection keeps the classification honest.
func TestEdgeDetection(t *testing.T) {
	cases := map[string]bool{
		module + "/clientapi":         true,
		module + "/storage/pgcluster": true,
		module + "/cmd/parley":        true,
		module + "/rooms/auth":        false,
		module + "/users":             false,
		module + "/storagex":          false,
	}
	for pkg, want := range cases {
		if got := isEdge(pkg); got != want {
			t.Errorf("isEdge(%s) = %v, want %v", pkg, got, want)
		}
	}
}
