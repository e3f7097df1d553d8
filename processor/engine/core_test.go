package engine_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The engine is a function of its inputs only because the code it runs is:
// the pure core (engine, policy, rules, state, eventtime) and the zone
// database it loads zones from import no I/O, clock or randomness, and call
// nothing of package time that reads the clock or the host's zone files.
var coreDirs = []string{".", "../policy", "../rules", "../state", "../eventtime", "../../schema/zoneinfo"}

// forbiddenImports are import paths, or prefixes ending in "/", the core
// must not import.
var forbiddenImports = []string{
	"os", "os/", "net", "net/", "syscall", "io/ioutil", "plugin",
	"math/rand", "math/rand/", "crypto/rand",
	"github.com/twmb/franz-go/", "github.com/cockroachdb/pebble/",
}

// forbiddenTime are the members of package time that read the clock, wait,
// or read the host: time.LoadLocation tries the host's zone files (and
// ZONEINFO) before anything embedded, and time.Local is the host's zone.
var forbiddenTime = map[string]bool{
	"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true, "Tick": true,
	"NewTimer": true, "NewTicker": true, "Sleep": true, "LoadLocation": true, "Local": true,
}

func TestCoreIsPure(t *testing.T) {
	files := 0
	for _, dir := range coreDirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if generatorOnly(f) {
				continue
			}
			files++
			checkFile(t, fset, f)
		}
	}
	if files < 15 {
		t.Fatalf("only %d core files checked: are the directories right?", files)
	}
}

// generatorOnly reports whether f is a `//go:build ignore` program, such as
// the generator of zoneinfo's zone names, which is no part of any build.
func generatorOnly(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() >= f.Package {
			break
		}
		for _, c := range cg.List {
			if strings.TrimSpace(c.Text) == "//go:build ignore" {
				return true
			}
		}
	}
	return false
}

func checkFile(t *testing.T, fset *token.FileSet, f *ast.File) {
	t.Helper()
	timeName := ""
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbiddenImports {
			if p == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(p, bad)) {
				t.Errorf("%s: imports %s", fset.Position(imp.Pos()), p)
			}
		}
		if p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "" {
		return
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName && forbiddenTime[sel.Sel.Name] {
			t.Errorf("%s: uses time.%s", fset.Position(sel.Pos()), sel.Sel.Name)
		}
		return true
	})
}
