package event

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The event layer is pure: each package imports only the standard library,
// golang.org/x/crypto and the Parley packages listed here.
func TestImports(t *testing.T) {
	allowed := map[string][]string{
		".":                {"id", "rooms/auth", "rooms/canonicaljson", "rooms/roomversion", "rooms/signing"},
		"../signing":       {"id", "rooms/canonicaljson"},
		"../canonicaljson": {},
	}
	const module = "github.com/parleyhq/parley/"
	for dir, parley := range allowed {
		t.Run(dir, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join(dir, "*.go"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no files in %s: %v", dir, err)
			}
			for _, file := range files {
				if strings.HasSuffix(file, "_test.go") {
					continue
				}
				src, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				f, err := parser.ParseFile(token.NewFileSet(), file, src, parser.ImportsOnly)
				if err != nil {
					t.Fatal(err)
				}
				for _, imp := range f.Imports {
					path, _ := strconv.Unquote(imp.Path.Value)
					first, _, _ := strings.Cut(path, "/")
					switch {
					case strings.HasPrefix(path, module):
						if !slices.Contains(parley, strings.TrimPrefix(path, module)) {
							t.Errorf("%s imports %s", file, path)
						}
					case strings.HasPrefix(path, "golang.org/x/crypto"):
					case strings.Contains(first, "."):
						t.Errorf("%s imports %s, not the standard library", file, path)
					}
				}
			}
		})
	}
}
