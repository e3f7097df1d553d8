package cli

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2 := write("memory.max", "1073741824\n")
	unlimited := write("unlimited", "max\n")
	v1none := write("v1", "9223372036854771712\n")
	missing := filepath.Join(dir, "missing")
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	for _, tc := range []struct {
		name      string
		env       map[string]string
		files     []string
		percent   int
		limit     int64
		limitFrom string
	}{
		{"container limit", nil, []string{missing, v2}, defaultGCPercent, (1073741824 - 1<<28) / 10 * 9, v2},
		{"no limit", nil, []string{unlimited, v1none, missing}, defaultGCPercent, 0, ""},
		{"limit below what is outside the heap", nil, []string{write("small", "268435456")}, defaultGCPercent, 0, ""},
		{"GOGC set", map[string]string{"GOGC": "50"}, []string{v2}, -1, (1073741824 - 1<<28) / 10 * 9, v2},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "2GiB"}, []string{v2}, defaultGCPercent, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1 << 40)
			got := tuneGC(env(tc.env), tc.files, 1<<28)
			if got.Percent != tc.percent || got.MemoryLimit != tc.limit || got.LimitFrom != tc.limitFrom {
				t.Fatalf("tuneGC = %+v, want percent %d limit %d from %q", got, tc.percent, tc.limit, tc.limitFrom)
			}
			wantPercent := 100
			if tc.percent > 0 {
				wantPercent = tc.percent
			}
			if p := debug.SetGCPercent(100); p != wantPercent {
				t.Errorf("GC percent in effect = %d, want %d", p, wantPercent)
			}
			wantLimit := int64(1 << 40)
			if tc.limit > 0 {
				wantLimit = tc.limit
			}
			if l := debug.SetMemoryLimit(-1); l != wantLimit {
				t.Errorf("memory limit in effect = %d, want %d", l, wantLimit)
			}
		})
	}
}
