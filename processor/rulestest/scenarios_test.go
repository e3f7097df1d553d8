package rulestest_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/microtrigger/microtrigger/processor/rulestest"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// TestScenarios runs every rule test of the example pack (one file per
// scenario of SCENARIOS.md) as subtests.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("../../testdata/ruletests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests found: %v", err)
	}
	zones := zoneinfo.New()
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := rulestest.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			results, err := f.Run(context.Background(), rulestest.Options{Zones: zones})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				t.Run(r.Name, func(t *testing.T) {
					if !r.Passed() {
						t.Error("\n" + r.Format())
					}
				})
			}
		})
	}
}
