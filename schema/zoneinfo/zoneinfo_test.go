package zoneinfo

import (
	"archive/zip"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// zipNames lists the entries of the embedded zip, read independently of DB.
func zipNames(t *testing.T) []string {
	t.Helper()
	r, err := zip.NewReader(strings.NewReader(tzdata), int64(len(tzdata)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range r.File {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// zones.go must be what gen.go makes of the committed zip: the same names,
// no more, no fewer. Run `make tzdata` (or `go generate`) after changing it.
func TestGeneratedNamesMatchZip(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "zones.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	ast.Inspect(f, func(n ast.Node) bool {
		if cc, ok := n.(*ast.CaseClause); ok {
			for _, e := range cc.List {
				lit, ok := e.(*ast.BasicLit)
				if !ok {
					t.Fatalf("case %T in zones.go: want string literals", e)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				cases = append(cases, s)
			}
		}
		return true
	})
	slices.Sort(cases)
	want := zipNames(t)
	if len(want) < 400 {
		t.Fatalf("embedded zip holds %d zones: not Go's zoneinfo.zip", len(want))
	}
	if !slices.Equal(cases, want) {
		t.Fatalf("zones.go has %d names, zoneinfo.zip %d: run go generate", len(cases), len(want))
	}
}

// Every name Known accepts loads, and Known refuses what Load refuses.
func TestKnownAgreesWithLoad(t *testing.T) {
	db := New()
	for _, name := range zipNames(t) {
		if !Known(name) {
			t.Errorf("Known(%q) = false for a zone of the zip", name)
		}
		if _, err := db.Load(name); err != nil {
			t.Errorf("Load(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "Local", "Mars/Olympus", "europe/berlin", "Europe/Berlin ", "Europe", "Europe/", "../zoneinfo.zip", "posixrules", "right/UTC"} {
		if Known(name) {
			t.Errorf("Known(%q) = true", name)
		}
		l, err := db.Load(name)
		if !errors.Is(err, ErrUnknownZone) {
			t.Errorf("Load(%q) = %v, %v; want ErrUnknownZone", name, l, err)
			continue
		}
		if name != "" && strings.Contains(err.Error(), name) {
			t.Errorf("Load(%q) error %q echoes the name", name, err)
		}
	}
}

// The offsets come from the embedded database whatever ZONEINFO names: the
// runtime's own loader would read it first. Asia/Almaty moved from UTC+6 to
// UTC+5 on 2024-03-01 (tzdata 2024a), America/Mexico_City dropped summer
// time after 2022 (2022f), and America/Nuuk went from -03 to -02 in 2023:
// an older host database gives other answers for all three.
func TestOffsetsDoNotDependOnHost(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "zoneinfo.zip")
	if err := os.WriteFile(bogus, []byte("not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		zone   string
		at     string
		offset int // seconds east of UTC
		abbrev string
	}{
		{"Asia/Almaty", "2024-02-29T12:00:00Z", 6 * 3600, "+06"},
		{"Asia/Almaty", "2024-03-01T12:00:00Z", 5 * 3600, "+05"},
		{"Asia/Almaty", "2026-07-01T12:00:00Z", 5 * 3600, "+05"},
		{"America/Mexico_City", "2022-07-01T12:00:00Z", -5 * 3600, "CDT"},
		{"America/Mexico_City", "2026-07-01T12:00:00Z", -6 * 3600, "CST"},
		{"America/Nuuk", "2026-01-15T12:00:00Z", -2 * 3600, "-02"},
		{"Europe/Berlin", "2026-03-29T01:00:00Z", 2 * 3600, "CEST"},
		{"Europe/Berlin", "2026-03-29T00:59:59Z", 1 * 3600, "CET"},
	}
	for _, zoneinfo := range []string{"", bogus, filepath.Join(t.TempDir(), "missing.zip")} {
		t.Run("ZONEINFO="+filepath.Base(zoneinfo), func(t *testing.T) {
			t.Setenv("ZONEINFO", zoneinfo)
			db := New()
			for _, c := range cases {
				l, err := db.Load(c.zone)
				if err != nil {
					t.Fatalf("Load(%s): %v", c.zone, err)
				}
				at, _ := time.Parse(time.RFC3339, c.at)
				name, off := at.In(l).Zone()
				if off != c.offset || name != c.abbrev {
					t.Errorf("%s at %s: %s %+d, want %s %+d", c.zone, c.at, name, off, c.abbrev, c.offset)
				}
				if l.String() != c.zone {
					t.Errorf("Load(%s) is named %q", c.zone, l.String())
				}
			}
		})
	}
}

// Concurrent loads of one zone return one location (the race detector
// checks the cache).
func TestLoadConcurrent(t *testing.T) {
	db := New()
	var wg sync.WaitGroup
	got := make([]*time.Location, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := db.Load("Asia/Tokyo")
			if err != nil {
				t.Error(err)
			}
			got[i] = l
		}()
	}
	wg.Wait()
	first, _ := db.Load("Asia/Tokyo")
	for i, l := range got {
		if l != first {
			t.Errorf("goroutine %d got another *time.Location", i)
		}
	}
}
