package backtest_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/rules"
)

var (
	benchEvents = flag.Int("backtest.events", 1_000_000, "events in the backtest benchmark's clickstream")
	benchUsers  = flag.Int("backtest.users", 100_000, "users in the backtest benchmark's clickstream")
)

// BenchmarkBacktest measures a backtest of the example pack over a
// generated clickstream (internal/clickstream: 1,000,000 events of 100,000
// users over two weeks by default) read from a JSONL file, against merely
// reading and decoding the same file, and reports both rates and their
// ratio.
func BenchmarkBacktest(b *testing.B) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// A little over ten events per user, cut at exactly benchEvents.
	evs := clickstream.Generate(clickstream.Config{Seed: 1, Users: *benchUsers, EventsPerUser: *benchEvents / *benchUsers * 11 / 10,
		Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Span: 14 * 24 * time.Hour})
	if len(evs) < *benchEvents {
		b.Fatalf("generated %d events, want %d", len(evs), *benchEvents)
	}
	evs = evs[:*benchEvents]
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := writeJSONL(f, evs); err != nil {
		b.Fatal(err)
	}
	f.Close()
	n := len(evs)
	evs = nil
	runtime.GC()
	ctx := context.Background()

	var read, full time.Duration
	var sends int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		got, _, err := backtest.ReadFile(ctx, path)
		if err != nil || got != int64(n) {
			b.Fatalf("read %d of %d events: %v", got, n, err)
		}
		read += time.Since(start)

		start = time.Now()
		res, err := backtest.Run(ctx, backtest.Config{Pack: pack, File: path, OutDir: filepath.Join(dir, "out"), StateDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		full += time.Since(start)
		sends = res.Report.Run.Totals.Sends
	}
	b.StopTimer()
	readRate := float64(n) * float64(b.N) / read.Seconds()
	fullRate := float64(n) * float64(b.N) / full.Seconds()
	b.ReportMetric(readRate, "read-events/s")
	b.ReportMetric(fullRate, "backtest-events/s")
	b.ReportMetric(fullRate/readRate, "ratio")
	b.ReportMetric(float64(sends), "sends")
	b.ReportMetric(0, "ns/op") // the rates above are the measure
}
