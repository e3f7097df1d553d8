package rulestest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/microtrigger/microtrigger/processor/rulestest"
)

// TestFormat pins what a test file that fails says, over deliberately
// failing files in testdata/failing: a failed expectation names the test
// and the checkpoint by file:line:col; a file, or a rule pack, that does not
// load says so once, with every problem at its file:line:col.
//
//	run file=PATH
//	    Loads and runs the file, printing each test's outcome as `rules
//	    test` does.
func TestFormat(t *testing.T) {
	datadriven.RunTest(t, "testdata/format", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "run" {
			t.Fatalf("unknown command %s", d.Cmd)
		}
		var path string
		d.ScanArgs(t, "file", &path)
		var b strings.Builder
		f, err := rulestest.Load(path)
		if err != nil {
			b.WriteString((&rulestest.LoadError{File: path, Err: err}).Format())
			return b.String()
		}
		results, err := f.Run(context.Background(), rulestest.Options{})
		if err != nil {
			le, ok := err.(*rulestest.LoadError)
			if !ok {
				t.Fatalf("not a *LoadError: %v", err)
			}
			return le.Format()
		}
		for i := range results {
			r := &results[i]
			if r.Passed() {
				b.WriteString("  PASS " + r.Pos.String() + ": " + r.Name + "\n")
				continue
			}
			b.WriteString(r.Format())
		}
		return b.String()
	})
}
