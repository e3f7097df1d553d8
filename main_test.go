package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildBinary builds microtrigger into a temporary directory, with extra
// go build arguments.
func buildBinary(t *testing.T, args ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "microtrigger")
	build := exec.Command(goTool, append(append([]string{"build", "-o", bin}, args...), ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersionStamp builds the binary as `make build` does and checks that
// --version prints the stamp.
func TestVersionStamp(t *testing.T) {
	bin := buildBinary(t, "-ldflags", "-X main.version=v0.0.0-test.1")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "microtrigger v0.0.0-test.1 (go") {
		t.Fatalf("--version: %v: %q", err, out)
	}
}
