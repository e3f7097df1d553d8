package backtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProgressPrinter(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 3, 0, 0, time.UTC)
	var term bytes.Buffer
	pp := &ProgressPrinter{W: &term, Terminal: true, Width: 10}
	pp.Print(Progress{Events: 1500, Elapsed: time.Second, Done: 50, Total: 100, EventTime: at})
	pp.Print(Progress{Events: 3000, Elapsed: 2 * time.Second, Done: 100, Total: 100, EventTime: at, Final: true})
	want := "\r\033[K[=====>    ]  50% 1,500 events, 1,500/s, event time 2026-03-04 10:03" +
		"\r\033[K[==========] 100% 3,000 events, 1,500/s, event time 2026-03-04 10:03\n"
	if term.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", term.String(), want)
	}

	var plain bytes.Buffer
	pp = &ProgressPrinter{W: &plain, Every: 5 * time.Second}
	for s := 1; s <= 12; s++ {
		pp.Print(Progress{Events: int64(s * 1000), Elapsed: time.Duration(s) * time.Second})
	}
	pp.Print(Progress{Events: 12500, Elapsed: 12500 * time.Millisecond, Final: true})
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "backtest: 5,000 events") ||
		lines[2] != "backtest: 12,500 events, 1,000/s, done in 12.5s" || strings.Contains(plain.String(), "\r") {
		t.Errorf("plain lines:\n%s", plain.String())
	}
}

// TestCancel stops a run from its progress callback: Run returns the
// context's error and leaves no state behind.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := goldenConfig(t, t.TempDir())
	cfg.InMemory, cfg.StateDir = false, t.TempDir()
	calls := 0
	cfg.ProgressInterval = time.Millisecond
	cfg.Progress = func(p Progress) {
		calls++
		cancel()
	}
	// A reader that never ends, so only the cancellation stops the run.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	go func() {
		line, _ := os.ReadFile("testdata/clickstream.jsonl")
		for {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	cfg.File = "/dev/fd/" + strconv.FormatUint(uint64(r.Fd()), 10)
	_, err = Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(cfg.StateDir); len(left) != 0 {
		t.Errorf("state left behind: %d entries", len(left))
	}
	if calls == 0 {
		t.Error("no progress reported")
	}
}
