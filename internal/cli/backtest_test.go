package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb, Assets{})
	return code, out.String(), errb.String()
}

func TestBacktestUsage(t *testing.T) {
	out := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"backtest", "--rules", "x", "--out", out}, "no input"},
		{"two inputs", []string{"backtest", "--rules", "x", "--out", out, "--input", "a.jsonl", "--topic", "events", "--brokers", "localhost:9092"}, "both given"},
		{"topic without brokers", []string{"backtest", "--rules", "x", "--out", out, "--topic", "events"}, "no Kafka brokers"},
		{"bad from", []string{"backtest", "--rules", "x", "--out", out, "--input", "a.jsonl", "--from", "yesterday"}, "RFC 3339"},
		{"to before from", []string{"backtest", "--rules", "x", "--out", out, "--input", "a.jsonl", "--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z"}, "before --from"},
		{"bad window", []string{"backtest", "--rules", "x", "--out", out, "--input", "a.jsonl", "--conversion-window", "soon"}, "--conversion-window"},
		{"no rules", []string{"backtest", "--out", out, "--input", "a.jsonl"}, "'--rules' not provided"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, c.args...)
			if code != ExitUsage || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, ExitUsage, c.want)
			}
		})
	}
}

func TestBacktestFailures(t *testing.T) {
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "t.yaml"), []byte("triggers:\n  - name: x\n    on: [page]\n    when: nope(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "backtest", "--rules", bad, "--input", "../../processor/backtest/testdata/clickstream.jsonl", "--out", t.TempDir())
	if code != ExitFailures || !strings.Contains(stderr, "t.yaml:") {
		t.Errorf("bad rules: exit %d, stderr %q", code, stderr)
	}
	// An input that is not there is a usage error, found before the replay.
	code, _, stderr = runCLI(t, "backtest", "--rules", "../../processor/backtest/testdata/rules", "--input", filepath.Join(t.TempDir(), "missing.jsonl"), "--out", t.TempDir())
	if code != ExitUsage || !strings.Contains(stderr, "missing.jsonl: no such file") {
		t.Errorf("missing input: exit %d, stderr %q", code, stderr)
	}
}

// TestBacktest runs the golden backtest of processor/backtest through the
// command line: its stdout is the golden summary, then the files written.
func TestBacktest(t *testing.T) {
	out := t.TempDir()
	t.Chdir("../../processor/backtest")
	// Flags also come from the environment.
	t.Setenv("MICROTRIGGER_BACKTEST_CONVERSION_WINDOW", "7d")
	code, stdout, stderr := runCLI(t, "backtest", "--rules", "testdata/rules", "--compare", "testdata/rules-noholdout",
		"--input", "testdata/clickstream.jsonl", "--from", "2026-03-02T08:00:00Z", "--to", "2026-03-11T09:00:00Z",
		"--out", out, "--progress", "lines")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile("testdata/golden/summary.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, string(want)) {
		t.Errorf("stdout is not the golden summary:\n%s", stdout)
	}
	if !strings.Contains(stdout, filepath.Join(out, "report.html")) {
		t.Errorf("stdout does not name the files written:\n%s", stdout)
	}
	if !strings.Contains(stderr, "backtest: 100%, 53 events") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on stderr (not a terminal: plain lines): %q", stderr)
	}
	for _, f := range []string{"commands.jsonl", "suppressions.jsonl", "report.json", "report.html", "compare/commands.jsonl", "compare/suppressions.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestBacktestEnvironment(t *testing.T) {
	out := t.TempDir()
	t.Chdir("../../processor/backtest")
	t.Setenv("MICROTRIGGER_BACKTEST_INPUT", "testdata/clickstream.jsonl")
	t.Setenv("MICROTRIGGER_BACKTEST_CONVERSION_EVENT", "Checkout Started")
	code, stdout, stderr := runCLI(t, "backtest", "--rules", "testdata/rules", "--out", out, "--progress", "none")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `"Checkout Started" events`) || stderr != "" {
		t.Errorf("environment not read: stdout %q, stderr %q", stdout, stderr)
	}
}
