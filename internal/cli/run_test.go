package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
)

func fullAssets(t *testing.T) Assets {
	sample, err := os.ReadFile("../../testdata/events/sample.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return Assets{Rules: os.DirFS("../../testdata/rules"), Templates: os.DirFS("../../testdata/templates"), Sample: sample}
}

// TestRun is `microtrigger run` end to end: the sample clickstream through
// the embedded broker, processor and console sink.
func TestRun(t *testing.T) {
	var out, errs bytes.Buffer
	code := Main(context.Background(), []string{"run"}, &out, &errs, fullAssets(t))
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	s := out.String()
	for _, want := range []string{
		"embedded broker listening on 127.0.0.1:",
		"13 emails would be sent",
		"a***@example.com  pricing-revisit",
		"b***@example.com  cart-abandonment        cart-last-call",
		"6 events were dead-lettered to events-dlq",
		"duplicate_key",
		"Subject: ", // the console sink printed the emails
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, leak := range []string{"ada@example.com", "bob@example.com"} {
		if strings.Contains(s, leak) || strings.Contains(errs.String(), leak) {
			t.Errorf("output shows the address %s unmasked", leak)
		}
	}
}

// TestErase publishes a delete request the processor understands, keyed by
// the user.
func TestErase(t *testing.T) {
	c, seeds := kafkatest.Cluster(t, 4)
	var out, errs bytes.Buffer
	code := Main(context.Background(), []string{"erase", "--brokers", broker.Addr(c), "--user", "user-42"}, &out, &errs, Assets{})
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if strings.Contains(out.String(), "user-42") {
		t.Errorf("output names the user: %s", out.String())
	}
	recs := kafkatest.ReadAll(t, seeds, schema.TopicEvents)
	if len(recs) != 1 || string(recs[0].Key) != "user-42" {
		t.Fatalf("records: %v", recs)
	}
	ev, err := schema.DecodeEvent(recs[0].Value)
	if err != nil || ev.Type != schema.TypeDelete || ev.UserKey() != "user-42" {
		t.Fatalf("delete request %+v: %v", ev, err)
	}
	if code := Main(context.Background(), []string{"erase", "--brokers", broker.Addr(c)}, &out, &errs, Assets{}); code != ExitUsage {
		t.Fatalf("erase without --user: exit %d", code)
	}
}

// TestRulesCommands checks the example pack and runs its rule tests
// through the CLI, and shows a broken pack's errors with positions.
func TestRulesCommands(t *testing.T) {
	var out, errs bytes.Buffer
	if code := Main(context.Background(), []string{"rules", "check", "../../testdata/rules"}, &out, &errs, Assets{}); code != ExitOK {
		t.Fatalf("rules check: exit %d\n%s", code, errs.String())
	}
	bad := t.TempDir()
	os.WriteFile(bad+"/t.yaml", []byte("triggers:\n  - name: x\n    intent: high\n    on: [page]\n    when: event.pth == \"/\"\n    template: nope\n"), 0o644)
	errs.Reset()
	if code := Main(context.Background(), []string{"rules", "check", bad}, &out, &errs, Assets{}); code != ExitFailures {
		t.Fatalf("rules check of a broken pack: exit %d", code)
	}
	if !strings.Contains(errs.String(), "t.yaml:5:16: trigger x: when: undefined field 'pth'") {
		t.Errorf("rules check output:\n%s", errs.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"rules", "test", "../../testdata/ruletests/01-pricing-revisit.yaml", "../../testdata/ruletests/02-cart-abandonment.yaml"}, &out, &errs, Assets{}); code != ExitOK {
		t.Fatalf("rules test: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "SUCCESS: 7 tests") {
		t.Errorf("rules test output:\n%s", out.String())
	}
}
