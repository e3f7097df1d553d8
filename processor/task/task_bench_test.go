package task_test

import (
	"encoding/json"
	"fmt"
	"os"
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

// BenchmarkPendingTimers has 1,000,000 users each start a form, which sets
// a 30-minute timer per user through the engine and a Pebble store on
// disk, then moves the watermark so that every timer fires and sends. It
// reports the cost per timer set (the event that sets it) and per timer
// fired (loading the user, the engine, the command).
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
	inputs := make([]task.Input, n)
	for i := range inputs {
		raw, _ := json.Marshal(map[string]any{"type": "track", "event": "Form Started", "userId": fmt.Sprintf("u%07d", i),
			"messageId": fmt.Sprintf("m%07d", i), "timestamp": schema.FormatTime(t0.Add(time.Duration(i) * time.Millisecond)),
			"traits": map[string]any{"email": "x@example.com"}, "properties": map[string]any{"form": "trial"}})
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			b.Fatal(err)
		}
		inputs[i] = task.Input{Event: ev, Raw: raw, Seq: int64(i)}
	}
	for it := 0; it < b.N; it++ {
		tk := tasktest.New(b, tasktest.Config{Pack: pack, Dir: b.TempDir(), CacheUsers: 10000})
		flush := func() int {
			out := tk.Flush()
			return len(out.Commands) + len(out.Suppressions)
		}
		start := time.Now()
		for i := range inputs {
			tk.Offer(inputs[i])
			if i%10000 == 9999 {
				flush()
			}
		}
		flush()
		set := time.Since(start)
		if _, timers := tk.Pending(); timers != n {
			b.Fatalf("%d pending timers, want %d", timers, n)
		}
		start = time.Now()
		fired := 0
		end := t0.Add(time.Hour + time.Duration(n)*time.Millisecond)
		for w := t0.Add(30 * time.Minute); !w.After(end); w = w.Add(10 * time.Second) {
			if err := tk.AdvanceWatermark(w); err != nil {
				b.Fatal(err)
			}
			fired += flush()
		}
		fire := time.Since(start)
		if fired != n {
			b.Fatalf("fired %d of %d", fired, n)
		}
		b.ReportMetric(float64(set.Nanoseconds())/float64(n), "ns/timer-set")
		b.ReportMetric(float64(fire.Nanoseconds())/float64(n), "ns/timer-fired")
		tk.Close()
	}
}

func benchTimers() int {
	if v := os.Getenv("TIMERS"); v != "" {
		var n int
		fmt.Sscan(v, &n)
		return n
	}
	return 1_000_000
}
