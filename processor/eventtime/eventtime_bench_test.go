package eventtime_test

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/eventtime"
)

// BenchmarkTimers sets 1,000,000 pending timers in the due index and fires
// them all in due order; it reports the cost per timer of each and the
// index's memory per pending timer.
func BenchmarkTimers(b *testing.B) {
	const n = 1_000_000
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var tm eventtime.Timers
		start := time.Now()
		for k := 0; k < n; k++ {
			var key eventtime.Key
			binary.BigEndian.PutUint64(key[:], uint64(k))
			tm.Set(key, time.Time{}, t0.Add(time.Duration((k*7919)%n)*time.Second))
		}
		set := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		start = time.Now()
		fired := 0
		var buf eventtime.Buffer
		for {
			kind, _, due, key := eventtime.Next(t0.Add(time.Duration(n)*time.Second), &buf, &tm)
			if kind != eventtime.Timer {
				break
			}
			tm.Set(key, due, time.Time{})
			fired++
		}
		fire := time.Since(start)
		if fired != n {
			b.Fatalf("fired %d of %d", fired, n)
		}
		b.ReportMetric(float64(set.Nanoseconds())/n, "ns/set")
		b.ReportMetric(float64(fire.Nanoseconds())/n, "ns/fire")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/pending-timer")
	}
}
