package processor_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
)

// latencyPack has one trigger that sends at once on every "Demo
// Requested": the send-command is due at the event's own time.
const latencyPack = `
policy:
  consent: {required: false}
  quiet_hours: null
  frequency: {per_day: 0, per_week: 0}
triggers:
  - name: demo-now
    intent: high
    on: [Demo Requested]
    template: demo-help
`

// BenchmarkLatency offers events at fixed rates (MT_LATENCY_RATES, events
// per second, default 5000,25000) to a processor on the wall clock and
// reports, per rate, the time from each event's arrival (its record's
// timestamp, set when it is produced) to its send-command being committed
// (seen by a read_committed consumer), minus the grace the event waits to
// be ordered: p50, p99 and p99.9 in milliseconds.
func BenchmarkLatency(b *testing.B) {
	rates := []int{5000, 25000}
	if v := os.Getenv("MT_LATENCY_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatalf("MT_LATENCY_RATES: %v", err)
			}
			rates = append(rates, r)
		}
	}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p50, p99, p999, n := measureLatency(b, rate, 8*time.Second)
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p99, "p99-ms")
				b.ReportMetric(p999, "p99.9-ms")
				b.ReportMetric(float64(n), "commands")
			}
		})
	}
}

func measureLatency(b *testing.B, rate int, dur time.Duration) (p50, p99, p999 float64, n int) {
	_, seeds := kafkatest.Cluster(b, 12)
	// The embedded broker does not always wake a waiting fetch when
	// records arrive (FACTS.md): short fetch waits keep that out of the
	// figures, as a real broker does.
	fast := append(append([]kgo.Opt(nil), seeds...), kgo.FetchMaxWait(10*time.Millisecond))
	cfg := testConfig(b, fast, nil, b.TempDir(), "latency")
	cfg.Pack = loadPackFrom(b, latencyPack)
	cfg.TickInterval = time.Second
	p := start(b, cfg)
	grace := p.p.Grace()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumer := kafkatest.Client(b, append(fast, kgo.ConsumeTopics(schema.TopicCommands),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	var mu sync.Mutex
	var lat []float64
	more := make(chan struct{}, 1)
	var warm time.Time // set once the identifies are in: the first second after is not timed
	go func() {
		for ctx.Err() == nil {
			fs := consumer.PollFetches(ctx)
			seen := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				c, err := schema.UnmarshalCommand(r.Value)
				mu.Lock()
				defer mu.Unlock()
				if err != nil || warm.IsZero() || c.SendAt.Before(warm) {
					return
				}
				lat = append(lat, float64(seen.Sub(c.SendAt)-grace)/float64(time.Millisecond))
			})
			select {
			case more <- struct{}{}:
			default:
			}
		}
	}()

	producer := kafkatest.Client(b, append(append([]kgo.Opt(nil), seeds...), kgo.ProducerLinger(0))...)
	const users = 20000
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	for u := 0; u < users; u++ {
		v := fmt.Appendf(nil, `{"messageId":"id%d","type":"identify","userId":"u%d","timestamp":%q,"traits":{"email":"u%d@example.com"}}`, u, u, past, u)
		producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: []byte("u" + strconv.Itoa(u)), Value: v}, nil)
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	warm = time.Now().Add(time.Second)
	mu.Unlock()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	sent, timed := 0, 0
	for now := range tick.C {
		if now.Sub(begin) > dur {
			break
		}
		for want := int(float64(rate) * now.Sub(begin).Seconds()); sent < want; sent++ {
			at := time.Now()
			if !at.Before(warm) {
				timed++
			}
			user := "u" + strconv.Itoa(sent%users)
			v := fmt.Appendf(nil, `{"messageId":"m%d","type":"track","event":"Demo Requested","userId":%q,"timestamp":%q}`,
				sent, user, at.UTC().Format(time.RFC3339Nano))
			producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: []byte(user), Value: v, Timestamp: at}, nil)
		}
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	// The last events are ready a grace later.
	deadline := time.NewTimer(grace + 30*time.Second)
	defer deadline.Stop()
	for {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= timed {
			break
		}
		select {
		case <-more:
		case <-deadline.C:
			b.Fatalf("%d of %d commands seen", got, timed)
		}
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no command seen")
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.Logf("rate %d/s: %d events, %d commands timed; minus the %v grace: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms",
		rate, sent, len(lat), grace, q(0.5), q(0.99), q(0.999), lat[len(lat)-1])
	return q(0.5), q(0.99), q(0.999), len(lat)
}
