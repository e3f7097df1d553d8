package processor_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
	seeds := brokerProcess(b, 12)
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
	// The offered load goes on, as page views no trigger reads, until
	// every timed command is seen: the last timed events are ready a
	// grace after they arrive, and a processor with no input at all is
	// not the steady state being measured.
	deadline := time.NewTimer(dur + grace + 30*time.Second)
	defer deadline.Stop()
	for now := range tick.C {
		if now.Sub(begin) > dur {
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			if got >= timed {
				break
			}
		}
		select {
		case <-deadline.C:
			b.Fatalf("%d of %d commands seen", len(lat), timed)
		default:
		}
		for want := int(float64(rate) * now.Sub(begin).Seconds()); sent < want; sent++ {
			at := time.Now()
			user := "u" + strconv.Itoa(sent%users)
			var v []byte
			if now.Sub(begin) <= dur {
				if !at.Before(warm) {
					timed++
				}
				v = fmt.Appendf(nil, `{"messageId":"m%d","type":"track","event":"Demo Requested","userId":%q,"timestamp":%q}`,
					sent, user, at.UTC().Format(time.RFC3339Nano))
			} else {
				v = fmt.Appendf(nil, `{"messageId":"m%d","type":"page","userId":%q,"timestamp":%q,"context":{"page":{"path":"/blog"}}}`,
					sent, user, at.UTC().Format(time.RFC3339Nano))
			}
			producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: []byte(user), Value: v, Timestamp: at}, nil)
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

// brokerProcess runs the embedded broker as a process of its own, as a
// real cluster is, so that its memory (every record produced) is not the
// processor's heap to collect: latency tails then show the processor's
// own pauses. It returns the options that connect to it.
func brokerProcess(b *testing.B, partitions int) []kgo.Opt {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(b.TempDir(), "microtrigger")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "broker", "--port", strconv.Itoa(port), "--partitions", strconv.Itoa(partitions))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	seeds := []kgo.Opt{kgo.SeedBrokers("127.0.0.1:" + strconv.Itoa(port))}
	adm := kadm.NewClient(kafkatest.Client(b, seeds...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		// The topics exist once the broker answers with them.
		if md, err := adm.ListTopics(ctx, schema.TopicEvents); err == nil && md.Has(schema.TopicEvents) {
			return seeds
		}
		select {
		case <-ctx.Done():
			b.Fatal("the broker process did not come up")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
