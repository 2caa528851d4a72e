package stateres

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure: besides the standard library it may
// import only id, mxerr, rooms/roomversion and rooms/auth (DESIGN.md,
// dependency direction).
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/parleyhq/parley/id":                true,
		"github.com/parleyhq/parley/mxerr":             true,
		"github.com/parleyhq/parley/rooms/roomversion": true,
		"github.com/parleyhq/parley/rooms/auth":        true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !strings.Contains(first, ".") {
				continue // standard library
			}
			if !allowed[path] {
				t.Errorf("%s imports %s", f, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files found")
	}
}
