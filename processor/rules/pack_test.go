package rules_test

import (
	"os"
	"testing"

	"github.com/microtrigger/microtrigger/processor/rules"
)

func TestExamplePackLoads(t *testing.T) {
	p, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Triggers) < 11 {
		t.Fatalf("example pack has %d triggers", len(p.Triggers))
	}
}
