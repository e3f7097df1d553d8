package task_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/processor/task/tasktest"
	"github.com/microtrigger/microtrigger/schema"
)

const timerPack = `
policy:
  grace: 0s
  consent: {required: false}
  quiet_hours: null
  frequency: {per_day: 0, per_week: 0}
triggers:
  - name: form
    intent: mid
    on: [Form Started]
    wait: 30m
    template: form-help
`

// BenchmarkPendingTimers has TIMERS users (default 1,000,000) each start a
// form, which sets a 30-minute timer per user through the engine and a
// Pebble store on disk, then moves the watermark one second at a time so
// that every timer fires and sends (a thousand per second). It reports the
// cost per timer set (the event that sets it) and per timer fired (loading
// the user, the engine, the command), the process's resident memory with
// every timer pending, and the longest time taken to fire one second's
// worth of due timers (how late the last of them goes out).
func BenchmarkPendingTimers(b *testing.B) {
	if testing.Short() {
		b.Skip("1M timers")
	}
	n := benchTimers()
	pack, err := rules.LoadSources([]string{"p.yaml"}, map[string][]byte{"p.yaml": []byte(timerPack)}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	input := func(i int) task.Input {
		raw := fmt.Appendf(nil, `{"type":"track","event":"Form Started","userId":"u%08d","messageId":"m%08d","timestamp":%q,"properties":{"form":"trial"}}`,
			i, i, schema.FormatTime(t0.Add(time.Duration(i)*time.Millisecond)))
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		return task.Input{Event: ev, Raw: raw, Seq: int64(i)}
	}
	for it := 0; it < b.N; it++ {
		runtime.GC()
		rss0 := rss(b)
		tk := tasktest.New(b, tasktest.Config{Pack: pack, Dir: b.TempDir(), CacheUsers: 10000})
		flush := func() int {
			out := tk.Flush()
			return len(out.Commands) + len(out.Suppressions)
		}
		var set time.Duration
		for i := 0; i < n; i++ {
			in := input(i)
			start := time.Now()
			tk.Offer(in)
			if i%10000 == 9999 {
				flush()
			}
			set += time.Since(start)
		}
		flush()
		if _, timers := tk.Pending(); timers != n {
			b.Fatalf("%d pending timers, want %d", timers, n)
		}
		runtime.GC()
		held := rss(b) - rss0
		start := time.Now()
		fired := 0
		var slowest time.Duration
		end := t0.Add(time.Hour + time.Duration(n)*time.Millisecond)
		for w := t0.Add(30 * time.Minute); !w.After(end); w = w.Add(time.Second) {
			step := time.Now()
			if err := tk.AdvanceWatermark(w); err != nil {
				b.Fatal(err)
			}
			fired += flush()
			slowest = max(slowest, time.Since(step))
		}
		fire := time.Since(start)
		if fired != n {
			b.Fatalf("fired %d of %d", fired, n)
		}
		b.ReportMetric(float64(set.Nanoseconds())/float64(n), "ns/timer-set")
		b.ReportMetric(float64(fire.Nanoseconds())/float64(n), "ns/timer-fired")
		b.ReportMetric(float64(held)/(1<<20), "RSS-MiB-pending")
		b.ReportMetric(float64(held)/float64(n), "RSS-B/pending-timer")
		b.ReportMetric(float64(slowest.Milliseconds()), "max-ms-per-second-of-timers")
		tk.Close()
	}
}

// rss returns the process's resident set size in bytes.
func rss(b *testing.B) int64 {
	f, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skip("no /proc/self/statm")
	}
	var size, resident int64
	fmt.Sscan(string(f), &size, &resident)
	return resident * int64(os.Getpagesize())
}

func benchTimers() int {
	if v := os.Getenv("TIMERS"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	return 1_000_000
}
