// Package tooltest finds the programs some tests run beside the Go ones
// (kcat, Chromium, promtool). Without one a test is skipped, saying how to
// install it, except when the environment variable CI is set: .ci/run
// installs them all, so there a missing one is a broken setup and the test
// fails rather than checking nothing. It is for tests only.
package tooltest

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of the program name, found on PATH or at one of
// paths, or skips (fails with CI set) saying install, the command that
// installs it.
func Need(t testing.TB, name, install string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH, and CI is set: .ci/run installs it (%s): %v", name, install, err)
	}
	t.Skipf("%s is not on PATH (%s); set CI to make this a failure", name, install)
	return ""
}
