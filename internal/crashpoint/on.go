//go:build faults

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// The armed point and its hit count are process-wide by nature, like the
// signal they end in; they exist only in a faults build.
var (
	armedName, armedAt = parse(os.Getenv(Env))
	hits               atomic.Int64
)

func parse(v string) (string, int64) {
	name, n, found := strings.Cut(v, ":")
	if !found {
		return name, 1
	}
	at, err := strconv.ParseInt(n, 10, 64)
	if err != nil || at < 1 {
		fmt.Fprintf(os.Stderr, "%s=%q: the count after ':' must be a positive integer\n", Env, v)
		os.Exit(2)
	}
	return name, at
}

// Armed reports whether reaching point now must crash the process: it is
// the armed one, reached for the Nth time.
func Armed(point string) bool {
	return point == armedName && hits.Add(1) == armedAt
}

// Hit crashes the process if point is armed.
func Hit(point string) {
	if Armed(point) {
		Crash()
	}
}

// Crash kills the process with SIGKILL: no deferred function, no flush, no
// LeaveGroup, as a power cut or the OOM killer ends it.
func Crash() {
	fmt.Fprintf(os.Stderr, "crashpoint: SIGKILL at %s\n", armedName)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is delivered asynchronously
}
