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
	Imports    []string
	Deps       []string
}

// listPackages lists the module's packages with their imports.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
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
	checked := 0
	for _, p := range listPackages(t) {
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

// The room graph is pure (issue #3): no database, no network, no process.
// Its packages import the standard library minus I/O to the outside world,
// golang.org/x/crypto, and Parley's id, mxerr and rooms packages only.
func TestRoomGraphIsPure(t *testing.T) {
	// net/netip (address parsing for server ACLs) is pure and allowed.
	forbiddenStd := []string{"net", "net/http", "net/rpc", "net/smtp", "database/sql", "os/exec", "syscall"}
	allowedModule := []string{module + "/id", module + "/mxerr", module + "/rooms/"}
	checked := 0
	for _, p := range listPackages(t) {
		if !strings.HasPrefix(p.ImportPath, module+"/rooms/") {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			first, _, _ := strings.Cut(imp, "/")
			switch {
			case !strings.Contains(first, "."):
				for _, f := range forbiddenStd {
					if imp == f || (f != "net" && strings.HasPrefix(imp, f+"/")) {
						t.Errorf("%s imports %s: the room graph does no I/O", p.ImportPath, imp)
					}
				}
			case strings.HasPrefix(imp, "golang.org/x/crypto/"):
			case strings.HasPrefix(imp, module+"/"):
				ok := false
				for _, a := range allowedModule {
					ok = ok || imp == a || strings.HasPrefix(imp, a)
				}
				if !ok {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			default:
				t.Errorf("%s imports the third-party package %s", p.ImportPath, imp)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no rooms package found: the check would pass vacuously")
	}
}
