package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/microtrigger/microtrigger"

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

// rel is the package's path in the module: "processor/engine", "" for main.
func (p pkg) rel() string { return rel(p.ImportPath) }

func rel(path string) string {
	if path == module {
		return ""
	}
	return strings.TrimPrefix(path, module+"/")
}

// ours says whether path is a package of the module.
func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// under says whether rel path p is dir or a package below it.
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// listPackages runs go list over the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages with")
	}
	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Dir,GoFiles,Imports,TestImports,XTestImports,Deps", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for d := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := d.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the module", len(pkgs))
	}
	return pkgs
}

// core is the pure core: no I/O, no clock.
var core = []string{"processor/engine", "processor/rules", "processor/policy", "processor/state", "processor/eventtime"}

// forbiddenInCore are the I/O packages the core must not import, with the
// core packages allowed each (and why).
func forbiddenInCore(path string) (forbidden bool, allowedIn string) {
	switch path {
	case "io/fs":
		return true, "processor/rules" // Load reads the pack from the fs.FS its caller opened
	case "os", "os/exec", "os/signal", "os/user", "net", "net/http", "net/netip", "net/rpc", "net/smtp", "syscall", "io/ioutil", "plugin", "unsafe", "crypto/tls", "database/sql":
		return true, ""
	}
	return strings.HasPrefix(path, "net/http/") || strings.HasPrefix(path, "golang.org/x/sys/"), ""
}

// forbiddenCoreDep says whether the core may not depend on path even
// through other packages: the Kafka client, Pebble, the network.
func forbiddenCoreDep(path string) bool {
	return strings.HasPrefix(path, "github.com/twmb/franz-go/") || strings.HasPrefix(path, "github.com/cockroachdb/pebble") ||
		path == "net" || path == "net/http" || path == "crypto/tls"
}

// testHelper says whether rel path p is a package of helpers for tests
// (an xxxtest package). processor/backtest and processor/rulestest are
// not: they are the drivers of `microtrigger backtest` and `rules test`.
func testHelper(p string) bool {
	return strings.HasSuffix(p, "test") && p != "processor/backtest" && p != "processor/rulestest"
}

// importProblems checks the import rules over pkgs.
func importProblems(pkgs []pkg) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, p := range pkgs {
		me := p.rel()
		imports := func(tests bool) []string {
			is := slices.Clone(p.Imports)
			if tests {
				is = append(append(is, p.TestImports...), p.XTestImports...)
			}
			return slices.DeleteFunc(is, func(s string) bool { return !ours(s) })
		}
		for _, side := range [][2]string{{"processor", "sink"}, {"sink", "processor"}} {
			if !under(me, side[0]) {
				continue
			}
			for _, i := range imports(true) {
				if under(rel(i), side[1]) {
					bad("%s imports %s: %s/... and %s/... meet only in schema", me, rel(i), side[0], side[1])
				}
			}
			for _, d := range p.Deps {
				if ours(d) && under(rel(d), side[1]) && !slices.Contains(p.Imports, d) {
					bad("%s depends on %s: %s/... and %s/... meet only in schema", me, rel(d), side[0], side[1])
				}
			}
		}
		if under(me, "schema") {
			for _, i := range imports(false) {
				if !under(rel(i), "schema") {
					bad("%s imports %s: schema, the contract, imports nothing of ours", me, rel(i))
				}
			}
		}
		var proc, snk bool
		for _, i := range imports(false) {
			proc = proc || under(rel(i), "processor")
			snk = snk || under(rel(i), "sink")
			if rel(i) == "internal/cli" && me != "" {
				bad("%s imports internal/cli: only main does", me)
			}
			if testHelper(rel(i)) && !testHelper(me) {
				bad("%s imports %s, a package of test helpers, outside its tests", me, rel(i))
			}
		}
		if proc && snk && me != "internal/cli" && !under(me, "processor") && !under(me, "sink") {
			bad("%s imports both processor/... and sink/...: only internal/cli does", me)
		}
		if slices.Contains(core, me) {
			for _, i := range p.Imports {
				if f, allowed := forbiddenInCore(i); f && allowed != me {
					bad("%s imports %s: the pure core does no I/O", me, i)
				}
			}
			for _, d := range p.Deps {
				if forbiddenCoreDep(d) {
					bad("%s depends on %s: the pure core knows neither Kafka, Pebble nor the network", me, d)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// clockFuncs are the functions of package time that read the clock or wait.
var clockFuncs = []string{"Now", "Since", "Until", "After", "AfterFunc", "Tick", "NewTicker", "NewTimer", "Sleep"}

// clockProblems lists the uses of clockFuncs in a Go source file.
func clockProblems(fset *token.FileSet, f *ast.File) []string {
	names := map[string]bool{}
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == "time" {
			switch {
			case im.Name == nil:
				names["time"] = true
			case im.Name.Name == ".":
				return []string{fmt.Sprintf("%s: imports time with a dot: its clock functions could not be seen", fset.Position(im.Pos()))}
			default:
				names[im.Name.Name] = true
			}
		}
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] && slices.Contains(clockFuncs, sel.Sel.Name) {
			out = append(out, fmt.Sprintf("%s: time.%s: the pure core reads no clock (its drivers pass now in)", fset.Position(sel.Pos()), sel.Sel.Name))
		}
		return true
	})
	return out
}

// TestStructure checks the module's packages against the README's rules.
func TestStructure(t *testing.T) {
	pkgs := listPackages(t)
	for _, p := range importProblems(pkgs) {
		t.Error(p)
	}
	found := 0
	for _, p := range pkgs {
		if !slices.Contains(core, p.rel()) {
			continue
		}
		found++
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, pr := range clockProblems(fset, f) {
				t.Error(pr)
			}
		}
	}
	if found != len(core) {
		t.Errorf("found %d of the %d core packages %v: the list is out of date", found, len(core), core)
	}
}

// TestRulesSeeBreaches: each rule reports a package that breaks it.
func TestRulesSeeBreaches(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	pkgs := []pkg{
		{ImportPath: m("processor/engine"), Imports: []string{"fmt", "os", m("schema")}, Deps: []string{"fmt", "os", m("schema")}},
		{ImportPath: m("processor/rules"), Imports: []string{"io/fs"}, Deps: []string{"io/fs"}},
		{ImportPath: m("processor/policy"), Imports: []string{"io/fs", m("processor/store")}, Deps: []string{"io/fs", m("processor/store"), "github.com/cockroachdb/pebble/v2"}},
		{ImportPath: m("processor"), Imports: []string{m("schema")}, XTestImports: []string{m("sink/ledger")}},
		{ImportPath: m("sink/render"), Imports: []string{m("internal/kafkatest")}},
		{ImportPath: m("sink"), Imports: []string{m("processor/backtest")}, Deps: []string{m("processor/backtest"), m("processor/rules")}},
		{ImportPath: m("schema"), Imports: []string{m("processor/state")}},
		{ImportPath: m("deploy"), Imports: []string{m("processor"), m("sink"), m("internal/cli")}},
		{ImportPath: m("internal/cli"), Imports: []string{m("processor"), m("sink"), m("processor/rulestest")}},
		{ImportPath: module, Imports: []string{m("internal/cli")}},
	}
	want := []string{
		"deploy imports both processor/... and sink/...: only internal/cli does",
		"deploy imports internal/cli: only main does",
		"processor imports sink/ledger: processor/... and sink/... meet only in schema",
		"processor/engine imports os: the pure core does no I/O",
		"processor/policy depends on github.com/cockroachdb/pebble/v2: the pure core knows neither Kafka, Pebble nor the network",
		"processor/policy imports io/fs: the pure core does no I/O",
		"schema imports processor/state: schema, the contract, imports nothing of ours",
		"sink depends on processor/rules: sink/... and processor/... meet only in schema",
		"sink imports processor/backtest: sink/... and processor/... meet only in schema",
		"sink/render imports internal/kafkatest, a package of test helpers, outside its tests",
	}
	if got := importProblems(pkgs); !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	src := `package engine

import (
	"time"
	clock "time"
)

func step(now time.Time) time.Duration {
	_ = time.Now()
	<-clock.After(time.Second)
	return time.Since(now) + time.Duration(1)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "engine.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := clockProblems(fset, f)
	want = []string{
		"engine.go:9:6: time.Now: the pure core reads no clock (its drivers pass now in)",
		"engine.go:10:4: time.After: the pure core reads no clock (its drivers pass now in)",
		"engine.go:11:9: time.Since: the pure core reads no clock (its drivers pass now in)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("clock problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
