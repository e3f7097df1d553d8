package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestRulesGolden runs `microtrigger rules ...` argv to output, as
// Pebble's tool tests do:
//
//	microtrigger ARG...
//	    Runs Main with the arguments (split on spaces) and prints the exit
//	    code, stdout and stderr. A --junit FILE is written to a temporary
//	    directory and printed after them.
func TestRulesGolden(t *testing.T) {
	datadriven.RunTest(t, "testdata/rules", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "microtrigger" {
			t.Fatalf("unknown command %s", d.Cmd)
		}
		args := strings.Fields(d.Input)
		junit := ""
		for i, a := range args {
			if a == "--junit" && i+1 < len(args) {
				junit = filepath.Join(t.TempDir(), args[i+1])
				args[i+1] = junit
			}
		}
		var out, errs bytes.Buffer
		code := Main(context.Background(), args, &out, &errs, Assets{})
		s := fmt.Sprintf("exit %d\nstdout:\n%sstderr:\n%s", code, out.String(), errs.String())
		if junit != "" {
			b, err := os.ReadFile(junit)
			if err != nil {
				t.Fatal(err)
			}
			s += "junit:\n" + string(b)
		}
		return s
	})
}
