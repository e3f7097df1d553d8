package rulestest_test

import (
	"context"
	"testing"

	"github.com/microtrigger/microtrigger/processor/rulestest"
)

// TestAbsentProperties runs a pack whose rules read properties the events
// may lack, over events with and without them: no case may stop on an
// evaluation error, and each read gives its default.
func TestAbsentProperties(t *testing.T) {
	f, err := rulestest.Load("testdata/absent/absent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := f.Run(context.Background(), rulestest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 4", len(results))
	}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("\n%s", r.Format())
		}
	}
}
