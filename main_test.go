package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/cli"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
)

// TestBinary builds microtrigger as `make build` does and checks what only
// the binary shows: the version stamp, and signals turned into exit codes.
func TestBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "microtrigger")
	build := exec.Command(goTool, "build", "-ldflags", "-X main.version=v0.0.0-test.1", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "microtrigger v0.0.0-test.1 (go") {
			t.Fatalf("--version: %v: %q", err, out)
		}
	})

	// An erase waiting on a broker that never answers stops at SIGTERM and
	// SIGINT, says so, and exits 130.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run("erase "+sig.String(), func(t *testing.T) {
			silent := kafkatest.SilentBroker(t)
			var stderr bytes.Buffer
			cmd := exec.Command(bin, "erase", "--brokers", silent.Addr, "--user", "u", "--timeout", "10m")
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-silent.Connected: // past main's signal.NotifyContext
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("erase never reached the broker")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != cli.ExitInterrupted {
				t.Fatalf("erase after %s: %v, want exit %d\n%s", sig, err, cli.ExitInterrupted, stderr.String())
			}
			if !strings.Contains(stderr.String(), "microtrigger erase: interrupted before it was done") {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}
