package deploy

import (
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
)

// TestScrapesPassPromtool runs `promtool check metrics`, Prometheus's own
// linter (names, units, _total on counters only, help text), on the
// scrapes of a running processor and sink.
func TestScrapesPassPromtool(t *testing.T) {
	telemetrytest.Promtool(t)
	sc := runningScrapes(t)
	for name, text := range map[string]string{"processor": sc.processor, "sink": sc.sink} {
		if !strings.Contains(text, "microtrigger_"+name+"_") {
			t.Fatalf("the %s scrape has no microtrigger_%s_ metric:\n%s", name, name, text)
		}
		if out, ok := telemetrytest.RunPromtool(t, text, "check", "metrics"); !ok || strings.TrimSpace(out) != "" {
			t.Errorf("promtool check metrics on the %s scrape:\n%s", name, out)
		}
	}
}
