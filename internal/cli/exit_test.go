package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
)

// TestExitCodes runs each command through Main as main does and checks its
// exit code and what it says: usage errors (2) before anything starts,
// failures (1) that say what failed and what to do, interruptions (130) of
// commands that were not done, and servers that stop cleanly (0).
func TestExitCodes(t *testing.T) {
	cluster, _ := kafkatest.Cluster(t, 2)
	live := broker.Addr(cluster)
	if err := cluster.CreateTopic("plain-changelog", 2, nil); err != nil { // cleanup.policy=delete
		t.Fatal(err)
	}
	closed := kafkatest.ClosedPort(t)
	silent := kafkatest.SilentBroker(t)
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "missing")
	file := filepath.Join(tmp, "file.txt")
	if err := os.WriteFile(file, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		rulesDir = "../../testdata/rules"
		input    = "../../processor/backtest/testdata/clickstream.jsonl"
		ruleTest = "../../testdata/ruletests/01-pricing-revisit.yaml"
	)
	out := func() string { return t.TempDir() }
	for _, c := range []struct {
		name        string
		args        []string
		env         map[string]string
		interrupted bool // run with the context ended, as main's after SIGTERM
		code        int
		says        []string // in stdout or stderr
	}{
		{name: "no command", code: ExitUsage, says: []string{"usage: microtrigger"}},
		{name: "unknown command", args: []string{"processer"}, code: ExitUsage, says: []string{`expected command but got "processer"`}},
		{name: "unknown flag", args: []string{"erase", "--user", "u", "--no-such-flag"}, code: ExitUsage, says: []string{"unknown long flag '--no-such-flag'"}},
		{name: "help", args: []string{"erase", "--help"}, code: ExitOK, says: []string{"--timeout=30s"}},
		{name: "version", args: []string{"--version"}, code: ExitOK, says: []string{"microtrigger "}},

		{name: "bad log level", args: []string{"--log.level", "verbose", "rules", "check", rulesDir}, code: ExitUsage,
			says: []string{`--log.level "verbose": want debug, info, warn or error`}},
		{name: "bad log level from the environment", args: []string{"rules", "check", rulesDir}, env: map[string]string{"MICROTRIGGER_LOG_LEVEL": "loud"}, code: ExitUsage,
			says: []string{`--log.level "loud"`}},
		{name: "log level in capitals", args: []string{"--log.level", "WARN", "rules", "check", rulesDir}, code: ExitOK, says: []string{"OK: 13 triggers"}},
		{name: "bad log limit", args: []string{"--log.max-similar=-1", "rules", "check", rulesDir}, code: ExitUsage, says: []string{"--log.max-similar -1: want 0 (no limit) or more"}},
		{name: "bad log format", args: []string{"--log.format", "xml", "rules", "check", rulesDir}, code: ExitUsage, says: []string{"enum value must be one of text,json"}},

		// A missing --brokers is a usage error for every Kafka command.
		{name: "processor without brokers", args: []string{"processor", "--rules", rulesDir, "--state-dir", tmp}, code: ExitUsage,
			says: []string{"microtrigger processor: no Kafka brokers: set --brokers or MICROTRIGGER_BROKERS", "Try 'microtrigger processor --help'"}},
		{name: "sink without brokers", args: []string{"sink", "--state-dir", tmp, "--metrics.listen", ""}, code: ExitUsage,
			says: []string{"microtrigger sink: no Kafka brokers"}},
		{name: "erase without brokers", args: []string{"erase", "--user", "u"}, code: ExitUsage, says: []string{"microtrigger erase: no Kafka brokers"}},
		{name: "backtest of a topic without brokers", args: []string{"backtest", "--rules", rulesDir, "--topic", "events", "--out", out()}, code: ExitUsage,
			says: []string{"microtrigger backtest: no Kafka brokers"}},

		// A path that is not there says which, and what to give.
		{name: "processor rules missing", args: []string{"processor", "--brokers", live, "--rules", missing, "--state-dir", tmp}, code: ExitUsage,
			says: []string{"microtrigger processor: --rules " + missing + ": no such directory: give the directory of a rule pack"}},
		{name: "processor rules a file", args: []string{"processor", "--brokers", live, "--rules", file, "--state-dir", tmp}, code: ExitUsage,
			says: []string{"--rules " + file + " is a file, not a directory"}},
		{name: "processor templates missing", args: []string{"processor", "--brokers", live, "--rules", rulesDir, "--templates", missing, "--state-dir", tmp}, code: ExitUsage,
			says: []string{"--templates " + missing + ": no such directory: give the directory of the email templates"}},
		{name: "backtest rules missing", args: []string{"backtest", "--rules", missing, "--input", input, "--out", out()}, code: ExitUsage,
			says: []string{"microtrigger backtest: --rules " + missing + ": no such directory"}},
		{name: "backtest compare missing", args: []string{"backtest", "--rules", rulesDir, "--compare", missing, "--input", input, "--out", out()}, code: ExitUsage,
			says: []string{"--compare " + missing + ": no such directory"}},
		{name: "backtest input missing", args: []string{"backtest", "--rules", rulesDir, "--input", missing, "--out", out()}, code: ExitUsage,
			says: []string{"--input " + missing + ": no such file: give a JSONL file of events"}},
		{name: "rules check missing", args: []string{"rules", "check", missing}, code: ExitUsage,
			says: []string{"microtrigger rules check: DIR " + missing + ": no such directory"}},
		{name: "rules test file missing", args: []string{"rules", "test", ruleTest, missing}, code: ExitUsage,
			says: []string{"microtrigger rules test: FILE " + missing + ": no such file"}},
		{name: "rules test bad --run", args: []string{"rules", "test", "--run", "(", ruleTest}, code: ExitUsage, says: []string{`--run "("`}},
		{name: "run rules missing", args: []string{"run", "--rules", missing}, code: ExitUsage, says: []string{"microtrigger run: --rules " + missing + ": no such directory"}},
		{name: "run input missing", args: []string{"run", "--input", missing}, code: ExitUsage, says: []string{"microtrigger run: --input " + missing + ": no such file"}},
		{name: "sink templates missing", args: []string{"sink", "--brokers", live, "--state-dir", tmp, "--templates", missing, "--metrics.listen", ""}, code: ExitUsage,
			says: []string{"microtrigger sink: --templates " + missing + ": no such directory"}},
		{name: "processor config refused", args: []string{"processor", "--brokers", live, "--rules", rulesDir, "--state-dir", tmp, "--heartbeat-interval", "1m"}, code: ExitUsage,
			says: []string{"microtrigger processor: processor config: heartbeat interval 1m0s must be shorter than the session timeout"}},

		// Brokers that cannot be reached.
		{name: "erase, broker down", args: []string{"erase", "--brokers", closed, "--user", "u"}, code: ExitFailures,
			says: []string{"microtrigger erase: brokers unreachable (--brokers " + closed + ")", "connection refused", "nothing was published"}},
		{name: "erase, broker silent", args: []string{"erase", "--brokers", silent.Addr, "--user", "u", "--timeout", "300ms"}, code: ExitFailures,
			says: []string{"brokers unreachable (--brokers " + silent.Addr + "): no answer within 300ms (--timeout)"}},
		{name: "erase, no timeout", args: []string{"erase", "--brokers", live, "--user", "u", "--timeout", "0s"}, code: ExitUsage, says: []string{"--timeout 0s: must be positive"}},
		{name: "erase", args: []string{"erase", "--brokers", live, "--user", "u"}, code: ExitOK, says: []string{"erasure of user"}},
		{name: "processor, broker down", args: []string{"processor", "--brokers", closed, "--rules", rulesDir, "--state-dir", t.TempDir(), "--metrics.listen", ""}, code: ExitFailures,
			says: []string{"microtrigger processor: read topic metadata", "connection refused"}},

		// A changelog the broker does not compact.
		{name: "processor, changelog not compacted", args: []string{"processor", "--brokers", live, "--rules", rulesDir, "--state-dir", t.TempDir(),
			"--topic.changelog", "plain-changelog", "--metrics.listen", ""}, code: ExitFailures,
			says: []string{`microtrigger processor: changelog topic "plain-changelog" has cleanup.policy=delete: it must be compact`, "--add-config cleanup.policy=compact"}},

		// SIGINT or SIGTERM: a command that was not done exits 130, a
		// server 0.
		{name: "erase interrupted", args: []string{"erase", "--brokers", live, "--user", "u"}, interrupted: true, code: ExitInterrupted,
			says: []string{"microtrigger erase: interrupted before it was done", "nothing was published"}},
		{name: "backtest interrupted", args: []string{"backtest", "--rules", rulesDir, "--input", input, "--out", tmp, "--progress", "none"}, interrupted: true, code: ExitInterrupted,
			says: []string{"microtrigger backtest: interrupted before it was done", tmp + " holds no complete output of this run"}},
		{name: "rules test interrupted", args: []string{"rules", "test", ruleTest}, interrupted: true, code: ExitInterrupted,
			says: []string{"microtrigger rules test: interrupted before it was done", "not every test ran"}},
		{name: "run interrupted", args: []string{"run"}, interrupted: true, code: ExitInterrupted,
			says: []string{"microtrigger run: interrupted before it was done", "stopped before the report"}},
		{name: "broker stopped", args: []string{"broker", "--port", "0"}, interrupted: true, code: ExitOK, says: []string{"embedded broker listening"}},
		{name: "processor stopped while starting", args: []string{"processor", "--brokers", live, "--rules", rulesDir, "--state-dir", t.TempDir(), "--metrics.listen", ""}, interrupted: true, code: ExitOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.interrupted {
				cancel()
			}
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- Main(ctx, c.args, &stdout, &stderr, fullAssets(t)) }()
			var code int
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("still running after 60s:\n%s%s", stdout.String(), stderr.String())
			}
			all := stdout.String() + stderr.String()
			if code != c.code {
				t.Errorf("exit %d, want %d:\n%s", code, c.code, all)
			}
			for _, s := range c.says {
				if !strings.Contains(all, s) {
					t.Errorf("output lacks %q:\n%s", s, all)
				}
			}
		})
	}
}

// TestEraseInterrupted: an erase waiting on a broker that never answers
// stops at SIGTERM (the context ends), says nothing was published, and
// exits 130.
func TestEraseInterrupted(t *testing.T) {
	silent := kafkatest.SilentBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"erase", "--brokers", silent.Addr, "--user", "u", "--timeout", "10m"}, &stdout, &stderr, Assets{})
	}()
	select {
	case <-silent.Connected: // erase is waiting for an answer
	case code := <-done:
		t.Fatalf("erase ended before it reached the broker: exit %d: %s", code, stderr.String())
	}
	cancel()
	if code := <-done; code != ExitInterrupted || !strings.Contains(stderr.String(), "interrupted before it was done") ||
		!strings.Contains(stderr.String(), "nothing was published") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// TestProcessorStops: a processor stopped by SIGTERM (its context ends)
// exits 0: that is how a server is meant to stop.
func TestProcessorStops(t *testing.T) {
	cluster, _ := kafkatest.Cluster(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"processor", "--brokers", broker.Addr(cluster), "--rules", "../../testdata/rules",
			"--state-dir", t.TempDir(), "--metrics.listen", "127.0.0.1:0"}, &stdout, &stderr, Assets{})
	}()
	kafkatest.Eventually(t, 30*time.Second, "processor started", func() bool {
		return strings.Contains(stderr.String(), "processor started")
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
}
