package cli

import (
	"bytes"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the processor's GOGC when the environment sets none.
// Its heap is mostly users decoded since the last snapshot, live until
// then: at Go's 100 the collector ran about a fifth of the CPU scanning
// them over and over (perf-baseline, 1,000,000 events); 300 trades memory
// (the heap may reach four times what is live) for a third less CPU per
// event. A memory limit (GOMEMLIMIT, or the container's, below) keeps the
// trade safe: near the limit the collector runs as often as it must.
const defaultGCPercent = 300

// cgroupMemoryFiles hold a container's memory limit: cgroup v2, then v1.
func cgroupMemoryFiles() []string {
	return []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
}

// gcSettings is what tuneGC decided, for the startup log.
type gcSettings struct {
	Percent     int    // -1: GOGC from the environment
	MemoryLimit int64  // 0: none set here
	LimitFrom   string // the file it was read from
}

// tuneGC sets the garbage collector's defaults for a long-running command
// with a large live heap: GOGC defaultGCPercent and, inside a container
// with a memory limit, a soft limit of 90 % of what the limit leaves once
// outside (memory that is not the Go heap: Pebble's block cache and
// memtables) is taken off, unless the environment sets GOGC or GOMEMLIMIT
// (those always win). files are cgroupMemoryFiles, a parameter for tests.
func tuneGC(getenv func(string) string, files []string, outside int64) gcSettings {
	s := gcSettings{Percent: -1}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		s.Percent = defaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit, file := containerMemoryLimit(files); limit-outside > 0 {
			s.MemoryLimit, s.LimitFrom = (limit-outside)/10*9, file
			debug.SetMemoryLimit(s.MemoryLimit)
		}
	}
	return s
}

// containerMemoryLimit reads the first of files that holds a byte count
// ("max", an absent file or v1's "no limit", a huge number, give none).
func containerMemoryLimit(files []string) (int64, string) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			continue
		}
		return n, f
	}
	return 0, ""
}

func (s gcSettings) logValue() slog.Value {
	attrs := []slog.Attr{}
	if s.Percent >= 0 {
		attrs = append(attrs, slog.Int("gogc", s.Percent))
	} else {
		attrs = append(attrs, slog.String("gogc", "from GOGC"))
	}
	if s.MemoryLimit > 0 {
		attrs = append(attrs, slog.Int64("memory_limit_bytes", s.MemoryLimit), slog.String("memory_limit_from", s.LimitFrom))
	}
	return slog.GroupValue(attrs...)
}
